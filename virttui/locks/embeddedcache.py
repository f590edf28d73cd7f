"""The cache of a lease directory that the embedded stores of this process share.

Its files come from the directory's readers.ELECTION cache; beside them (SharedDir): which of its
leases a store of this process holds, the live host_ids, and what each store wrote into it. A store
attaches to it, and writes what it did to a file into it at once (LeaseDirMember), so every store
shows that at its next poll without reading the file back.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import replace
from weakref import WeakKeyDictionary, WeakSet

from virttui.locks.dircache import CachedFile, LeaseDirCache
from virttui.locks.embeddedfiles import read_fingerprint_of
from virttui.locks.model import LeaderRecord, LeaseDirSnapshot, LeaseFile
from virttui.locks.readers import ReaderElection


class SharedDir:
    """What the stores of this process on one directory know besides its files' cache. Thread-safe;
    where both are taken, the cache's lock comes first."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users: WeakSet[object] = WeakSet()  # stores attached to this directory
        self.held: dict[str, int] = {}  # lease name -> host_id of the store of this process holding it
        self.held_version = 0
        self.lockspace_fp: tuple[int, int, int, int] | None = None  # the lockspace file when `live` was read
        self.live: tuple[int, ...] = ()
        self.error = ""  # the last pass failed: every view says so until a pass succeeds
        # name -> sequence number of a store's own write into the cache: a pass that began before
        # it keeps it (the pass may have read the file just before that write)
        self.writes: dict[str, int] = {}
        self.seq = 0
        # The files every store's view starts from (see shared_base): built once per change, not per store
        self.base_inputs: tuple[int, int] | None = None
        self.base: tuple[LeaseFile, ...] = ()
        self.index: dict[str, int] = {}  # name -> its position in base
        self.variants: dict[str, tuple[CachedFile, LeaseFile]] = {}  # a cached file, and it marked held


_SHARED: WeakKeyDictionary[LeaseDirCache, SharedDir] = WeakKeyDictionary()  # gone with the election's cache
_SHARED_LOCK = threading.Lock()
_ATTACH_LOCK = threading.Lock()  # one store at a time decides whether a cache is left over (see _use_key)


def shared_of(cache: LeaseDirCache) -> SharedDir:
    with _SHARED_LOCK:
        found = _SHARED.get(cache)
        if found is None:
            found = _SHARED[cache] = SharedDir()
        return found


def shared_base(cache: LeaseDirCache, shared: SharedDir) -> tuple[tuple[LeaseFile, ...], dict[str, int]]:
    """The cached files in name order, those a store of this process holds marked held: what every
    store's view is, but for its own leases. Built once per change for all of them, not once per
    store: each held file is copied once, not once per view. Call with both locks held."""
    inputs = (cache.version, shared.held_version)
    if shared.base_inputs != inputs:
        files = []
        index = {}
        variants = {}
        for position, (name, cached) in enumerate(sorted(cache.files.items())):
            lease = cached.file
            if name in shared.held and lease.leader is not None and not lease.held:
                found = shared.variants.get(name)
                if found is None or found[0] is not cached:
                    found = (cached, replace(lease, held=True))
                variants[name] = found
                lease = found[1]
            files.append(lease)
            index[name] = position
        shared.base, shared.index, shared.variants, shared.base_inputs = tuple(files), index, variants, inputs
    return shared.base, shared.index


class LeaseDirMember:
    """An embedded store's place in its lease directory: where the directory is, which of its
    leases the store holds, and the cache it shares with the other stores of this process there.
    The attributes below are set by EmbeddedLeaseStore.__init__."""

    directory: str
    host_id: int
    lockspace: str
    slow_interval: float
    _election: ReaderElection
    _monotonic: Callable[[], float]
    _held: dict[str, int]  # lease path -> fd holding its lock
    _mutex: threading.RLock
    _key: Hashable | None  # ("embedded", st_dev, st_ino, lockspace) of the directory
    _key_checked: float | None
    _cache: LeaseDirCache | None
    _shared: SharedDir | None
    _built: tuple | None  # what self._view was built from
    _view: LeaseDirSnapshot | None
    _own: dict[str, tuple[LeaseFile, LeaseFile]]  # a base file, and it as this store's

    @property
    def lockspace_path(self) -> str:
        return os.path.join(self.directory, self.lockspace)

    def _open_dir(self) -> int:
        """The lease directory's fd: its entries are looked up in it (dir_fd), never by a path that a
        renamed or swapped component could lead elsewhere between two steps."""
        # The configured directory itself may be a symlink (to an NFS mount, say): the operator chose
        # it, so it is followed, once, here; entries inside it never are.
        return os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def _names(self) -> frozenset[str]:
        with self._mutex:
            return frozenset(os.path.basename(path) for path in self._held)

    def _attach(self, now: float) -> tuple[LeaseDirCache, SharedDir] | str:
        """The cache of this store's directory and what the stores on it share, or why there is none.
        The directory is looked at again every slow_interval: its path may name another one by now."""
        if self._key is None or self._key_checked is None or now - self._key_checked >= self.slow_interval:
            try:
                info = os.stat(self.directory)
            except OSError as exc:
                return f"lease directory {self.directory}: {exc.strerror}"
            self._key_checked = now
            self._use_key(("embedded", info.st_dev, info.st_ino, self.lockspace))
        assert self._cache is not None and self._shared is not None
        return self._cache, self._shared

    def _use_key(self, key: Hashable) -> None:
        if key == self._key:
            return
        mine = self._names()
        self._detach()
        with _ATTACH_LOCK:
            cache = self._election.cache(key)
            shared = shared_of(cache)
            with shared.lock:
                left_over = not shared.users
            if left_over:  # its stores are gone: it may be of a removed directory whose inode this one reuses
                self._election.forget(key)
                cache = self._election.cache(key)
                shared = shared_of(cache)
            with shared.lock:
                shared.users.add(self)
                shared.held.update((name, self.host_id) for name in mine)
                shared.held_version += 1
        self._key, self._cache, self._shared = key, cache, shared
        self._built = None

    def _detach(self) -> None:
        key, shared = self._key, self._shared
        if key is None or shared is None:
            return
        mine = self._names()
        with _ATTACH_LOCK:
            with shared.lock:
                shared.users.discard(self)
                for name in mine:
                    shared.held.pop(name, None)
                shared.held_version += 1
                last = not shared.users
            self._election.release(self, key)  # another store reads at its next due poll
            if last:
                self._election.forget(key)
        self._key = self._cache = self._shared = None
        self._key_checked = None
        self._built = self._view = None
        self._own = {}

    def close(self) -> None:
        """This store's host went away: another store of this process reads the directory from now on."""
        self._detach()

    @property
    def cache(self) -> LeaseDirCache | None:
        """The cache this store's polls read, shared with the other stores on its directory (its
        `reads` count the leader records read into it); None before the store first looked."""
        return self._cache

    def _wrote(self, name: str, fd: int | None, leader: LeaderRecord | None, *, held: bool | None,
               reread: bool = False) -> None:
        """What this store just did to a file, into the shared cache at once, without reading it back:
        every store of this process shows it at its next poll. fd None: the file was removed; leader
        None: what the file holds now is unknown; either or reread: the next pass reads it again."""
        attached = self._attach(self._monotonic())
        if isinstance(attached, str):
            return
        cache, shared = attached
        info = None
        if fd is not None:
            try:
                info = os.fstat(fd)
            except OSError:
                pass
        with cache.lock, shared.lock:
            old = cache.files.get(name)
            entry: CachedFile | None = old
            if fd is None:
                entry = None
            elif leader is not None and info is not None:
                lease = LeaseFile(name=name, path=os.path.join(self.directory, name), size=info.st_size, leader=leader)
                entry = CachedFile("" if reread else read_fingerprint_of(info), lease)
            elif old is not None:
                entry = replace(old, fingerprint="")  # no fingerprint matches: read at the next pass
            if entry is not old:
                if entry is None:
                    cache.files.pop(name, None)
                else:
                    cache.files[name] = entry
                cache.version += 1
                shared.seq += 1
                shared.writes[name] = shared.seq
            if held is True:
                shared.held[name] = self.host_id
            elif held is False:
                shared.held.pop(name, None)
            shared.held_version += 1

    def _forget_held(self, names: Iterable[str]) -> None:
        shared = self._shared
        if shared is None:
            return
        with shared.lock:
            for name in names:
                shared.held.pop(name, None)
            shared.held_version += 1

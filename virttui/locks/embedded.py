"""Auto disk leases for embedded hosts: sanlock-format files guarded by kernel file locks.

Each lease file carries a real sanlock leader record (so the same reader
serves embedded and real hosts), while exclusion comes from an open file
description lock (virttui.locks.ofd): two embedded hosts in one process exclude
each other exactly as two processes do, and the status asks each file whether
it is held without taking anything.

snapshot() reads every file, fresh; poll_snapshot() costs what changed (see
hostleases.HostLeaseManager, whose design it follows): the leases a store holds
are its "daemon's" answer, known without I/O, and the files come from a cache
shared by every store of this process on the directory, refreshed by one of them
at most every slow_interval.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import replace
from weakref import WeakKeyDictionary, WeakSet

from virttui.drivers.errors import LeaseConflict
from virttui.locks import ofd
from virttui.locks.candidates import name_refusal, refusal
from virttui.locks.dircache import CachedFile, LeaseDirCache
from virttui.locks.leader import (
    DELTA_DISK_MAGIC,
    DELTA_DISK_VERSION,
    LeaderError,
    pack_leader,
    parse_leader,
)
from virttui.locks.model import (
    LOCKSPACE_NAME,
    MAX_HOST_ID,
    CleanupOutcome,
    CleanupReport,
    LeaderRecord,
    LeaseDirSnapshot,
    LeaseFile,
)
from virttui.locks.naming import sanlock_lease_name
from virttui.locks.readers import DEFAULT_FULL_INTERVAL, DEFAULT_SLOW_INTERVAL, ELECTION, ReaderElection

LEASE_FILE_SIZE = 1024 * 1024  # what libvirt's sanlock plugin allocates
SECTOR = 512

ProgressCallback = Callable[[int, int, CleanupOutcome], None]


class LeaseDirError(OSError):
    """The lease directory cannot be created or read."""


class _Shared:
    """What the stores of this process on one directory know besides its files' cache. Thread-safe;
    where both are taken, the cache's lock comes first."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users: WeakSet[EmbeddedLeaseStore] = WeakSet()  # stores attached to this directory
        self.held: dict[str, int] = {}  # lease name -> host_id of the store of this process holding it
        self.held_version = 0
        self.lockspace_fp: tuple[int, int, int, int] | None = None  # the lockspace file when `live` was read
        self.live: tuple[int, ...] = ()
        self.error = ""  # the last pass failed: every view says so until a pass succeeds
        # name -> sequence number of a store's own write into the cache: a pass that began before
        # it keeps it (the pass may have read the file just before that write)
        self.writes: dict[str, int] = {}
        self.seq = 0
        # The files every store's view starts from (see _base): built once per change, not per store
        self.base_inputs: tuple[int, int] | None = None
        self.base: tuple[LeaseFile, ...] = ()
        self.index: dict[str, int] = {}  # name -> its position in base
        self.variants: dict[str, tuple[CachedFile, LeaseFile]] = {}  # a cached file, and it marked held


_SHARED: WeakKeyDictionary[LeaseDirCache, _Shared] = WeakKeyDictionary()  # gone with the election's cache
_SHARED_LOCK = threading.Lock()
_ATTACH_LOCK = threading.Lock()  # one store at a time decides whether a cache is left over (see _use_key)


def _shared_of(cache: LeaseDirCache) -> _Shared:
    with _SHARED_LOCK:
        found = _SHARED.get(cache)
        if found is None:
            found = _SHARED[cache] = _Shared()
        return found


def _fingerprint(info: os.stat_result) -> str:
    """What says a file may have changed since it was read: size, times and inode."""
    return f"{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}:{info.st_ino}"


class EmbeddedLeaseStore:
    """One embedded host's view of a shared lease directory."""

    def __init__(
        self,
        directory: str,
        host_id: int,
        *,
        host_name: str = "",
        lockspace: str = LOCKSPACE_NAME,
        clock: Callable[[], float] = time.time,
        slow_interval: float = DEFAULT_SLOW_INTERVAL,
        full_interval: float = DEFAULT_FULL_INTERVAL,
        election: ReaderElection = ELECTION,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = os.path.abspath(directory)
        self.host_id = host_id
        self.host_name = host_name or f"host{host_id}"
        self.lockspace = lockspace
        self._clock = clock  # leader timestamps
        self._monotonic = monotonic  # the cadence of passes over the files
        self.slow_interval = slow_interval
        self.full_interval = full_interval
        self._election = election
        self._held: dict[str, int] = {}  # lease path -> fd holding its lock
        self._mutex = threading.RLock()  # acquire() records what it wrote (see _wrote) while holding it
        self._key: Hashable | None = None  # ("embedded", st_dev, st_ino, lockspace) of the directory
        self._key_checked: float | None = None
        self._cache: LeaseDirCache | None = None
        self._shared: _Shared | None = None
        self._built: tuple | None = None  # what self._view was built from
        self._view: LeaseDirSnapshot | None = None
        self._own: dict[str, tuple[LeaseFile, LeaseFile]] = {}  # a base file, and it as this store's

    # -- lockspace ---------------------------------------------------------
    @property
    def lockspace_path(self) -> str:
        return os.path.join(self.directory, self.lockspace)

    def join_lockspace(self) -> None:
        """Create the directory and lockspace file, and mark this host_id live in it."""
        try:
            os.makedirs(self.directory, exist_ok=True)
            fd = os.open(self.lockspace_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise LeaseDirError(exc.errno, f"lease directory {self.directory}: {exc.strerror}") from exc
        try:
            if os.fstat(fd).st_size < LEASE_FILE_SIZE:
                os.ftruncate(fd, LEASE_FILE_SIZE)
            self._write_delta(fd, timestamp=max(1, int(self._clock())))
        finally:
            os.close(fd)
        self._lockspace_written()

    def leave_lockspace(self) -> None:
        try:
            fd = os.open(self.lockspace_path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return
        try:
            self._write_delta(fd, timestamp=0)
        finally:
            os.close(fd)
        self._lockspace_written()

    def _lockspace_written(self) -> None:
        """The live host_ids are read again at the next poll: two writes within one tick of the
        filesystem's clock can leave the file's size and times as they were."""
        attached = self._attach(self._monotonic())
        if isinstance(attached, tuple):
            with attached[1].lock:
                attached[1].lockspace_fp = None

    def _write_delta(self, fd: int, timestamp: int) -> None:
        record = pack_leader(
            space_name=self.lockspace,
            resource_name=self.host_name[:48],
            owner_id=self.host_id,
            owner_generation=1,
            timestamp=timestamp,
            magic=DELTA_DISK_MAGIC,
            version=DELTA_DISK_VERSION,
        )
        os.pwrite(fd, record, (self.host_id - 1) * SECTOR)

    def live_host_ids(self) -> tuple[int, ...]:
        """host_ids whose delta lease in the lockspace file is renewed (non-zero timestamp).

        Only the file's data extents are read (it is 1 MiB, sparse, with a sector written per host that
        joined), not 2000 empty sectors. Polls read it only when it changed (see _check_lockspace).
        """
        try:
            with open(self.lockspace_path, "rb") as handle:
                return _live_ids(handle.fileno())
        except OSError:
            return ()

    # -- acquire / release -------------------------------------------------
    def lease_path(self, disk_path: str) -> str:
        return os.path.join(self.directory, sanlock_lease_name(disk_path))

    def acquire(self, disk_path: str) -> str:
        """Take the exclusive lease of one disk, creating its file if needed."""
        path = self.lease_path(disk_path)
        with self._mutex:
            if path in self._held:
                raise LeaseConflict(f"disk {disk_path}: lease {os.path.basename(path)} is already held by this host")
            fd = self._open_locked(path, disk_path)
            try:
                record = self._write_owner(fd, os.path.basename(path), disk_path)
            except BaseException:
                os.close(fd)  # closing drops the lock
                raise
            self._held[path] = fd
            self._wrote(os.path.basename(path), fd, record, held=True)
        return path

    def _open_locked(self, path: str, disk_path: str) -> int:
        for _ in range(5):
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise LeaseConflict(f"disk {disk_path}: cannot open lease {path}: {exc.strerror}") from exc
            try:
                locked = ofd.try_lock(fd)
            except OSError as exc:
                os.close(fd)
                raise LeaseConflict(f"disk {disk_path}: cannot lock lease {path}: {exc.strerror}") from exc
            if not locked:
                os.close(fd)
                raise LeaseConflict(self._conflict_message(path, disk_path))
            # A cleanup may have unlinked the file between open and lock: retry on the new file.
            try:
                on_disk = os.lstat(path)
            except FileNotFoundError:
                os.close(fd)
                continue
            mine = os.fstat(fd)
            if (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino):
                return fd
            os.close(fd)
        raise LeaseConflict(f"disk {disk_path}: lease {path} keeps changing; retry")

    def _conflict_message(self, path: str, disk_path: str) -> str:
        owner = ""
        try:
            with open(path, "rb") as handle:
                record = parse_leader(handle.read(SECTOR))
            if record.owner_id:
                owner = f" by host_id {record.owner_id}"
        except (OSError, LeaderError):
            pass
        return f"disk {disk_path}: lease {os.path.basename(path)} is held{owner} (lease conflict)"

    def _write_owner(self, fd: int, name: str, disk_path: str) -> LeaderRecord:
        size = os.fstat(fd).st_size
        lver = 0
        if size:
            try:
                lver = parse_leader(os.pread(fd, SECTOR, 0)).lver
            except LeaderError as exc:
                raise LeaseConflict(f"disk {disk_path}: lease file {name} is corrupt ({exc})") from None
        else:
            os.ftruncate(fd, LEASE_FILE_SIZE)
        record = pack_leader(
            space_name=self.lockspace,
            resource_name=name,
            owner_id=self.host_id,
            owner_generation=1,
            lver=lver + 1,
            timestamp=max(1, int(self._clock())),
        )
        os.pwrite(fd, record, 0)
        return parse_leader(record)

    def release(self, disk_path: str) -> None:
        """Release one disk's lease; the file stays, marked free (timestamp 0)."""
        path = self.lease_path(disk_path)
        with self._mutex:
            fd = self._held.pop(path, None)
        if fd is None:
            return
        free: LeaderRecord | None = None
        try:
            record = parse_leader(os.pread(fd, SECTOR, 0))
            packed = pack_leader(
                space_name=record.space_name,
                resource_name=record.resource_name,
                owner_id=record.owner_id,
                owner_generation=record.owner_generation,
                lver=record.lver,
                timestamp=0,
            )
            os.pwrite(fd, packed, 0)
            free = parse_leader(packed)
        except (OSError, LeaderError):
            pass  # releasing must never fail; dropping the lock below is what matters
        finally:
            try:
                # Read again at the next pass: a process taking the lease within the filesystem's clock
                # tick would leave size and times as this write left them.
                self._wrote(os.path.basename(path), fd, free, held=False, reread=True)
            finally:
                os.close(fd)  # closing drops the lock

    def release_all(self) -> None:
        with self._mutex:
            paths = list(self._held)
        for path in paths:
            with self._mutex:
                fd = self._held.pop(path, None)
            if fd is not None:
                os.close(fd)  # closing drops the lock
        self._forget_held(os.path.basename(path) for path in paths)

    def holds(self, disk_path: str) -> bool:
        return self.lease_path(disk_path) in self._held

    def _names(self) -> frozenset[str]:
        with self._mutex:
            return frozenset(os.path.basename(path) for path in self._held)

    # -- the shared cache --------------------------------------------------
    def _attach(self, now: float) -> tuple[LeaseDirCache, _Shared] | str:
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
            shared = _shared_of(cache)
            with shared.lock:
                left_over = not shared.users
            if left_over:  # its stores are gone: it may be of a removed directory whose inode this one reuses
                self._election.forget(key)
                cache = self._election.cache(key)
                shared = _shared_of(cache)
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
                entry = CachedFile("" if reread else _fingerprint(info), lease)
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

    # -- incremental -------------------------------------------------------
    def poll_snapshot(self) -> LeaseDirSnapshot:
        """This poll's view, from what changed since the last (the same object while nothing did).

        What this store holds is known without I/O. The files come from the shared cache: only the
        store elected its reader (readers.ELECTION) passes over them, at most every slow_interval,
        reading the leader records of files whose fingerprint changed plus a rotation that reads each
        again within full_interval. Whether another process holds a lease is asked at that pass.
        """
        now = self._monotonic()
        attached = self._attach(now)
        if isinstance(attached, str):
            return self._error_view(attached)
        cache, shared = attached
        passing = self._election.claim(self._key, self) and (cache.due(now, self.slow_interval) or bool(shared.error))
        if passing:
            self._pass(cache, shared, now)
        else:
            self._check_lockspace(cache, shared, force=False)
        return self._view_from(cache, shared)

    def _rotation_size(self, cache: LeaseDirCache) -> int:
        """How many leader records a pass reads whatever their fingerprint: every one within full_interval."""
        if not cache.files or self.full_interval <= 0:
            return 0
        return math.ceil(len(cache.files) * self.slow_interval / self.full_interval)

    def _check_lockspace(self, cache: LeaseDirCache, shared: _Shared, *, force: bool) -> None:
        """Live host_ids, read again only when the lockspace file's size or times moved (or force)."""
        try:
            info = os.stat(self.lockspace_path)
            fingerprint: tuple[int, int, int, int] | None = (info.st_ino, info.st_size, info.st_mtime_ns,
                                                             info.st_ctime_ns)
        except OSError:
            fingerprint = None
        with shared.lock:
            if not force and fingerprint == shared.lockspace_fp and fingerprint is not None:
                return
            shared.lockspace_fp = fingerprint
            shared.live = self.live_host_ids() if fingerprint is not None else ()
        if fingerprint is not None:
            with cache.lock:
                cache.reads += 1

    def _pass(self, cache: LeaseDirCache, shared: _Shared, now: float) -> None:
        """Read what changed in the directory into the cache; a failure shows in every view until a
        pass succeeds, and gives the directory to whichever store polls next."""
        try:
            dfd = self._open_dir()
        except OSError as exc:
            self._failed(shared, f"lease directory {self.directory}: {exc.strerror}")
            return
        try:
            info = os.fstat(dfd)
            if ("embedded", info.st_dev, info.st_ino, self.lockspace) != self._key:
                self._key_checked = None  # the path names another directory now: its cache, next poll
                self._election.release(self, self._key)
                return
            names = os.listdir(dfd)
            with cache.lock, shared.lock:
                before = dict(cache.files)
                rotation = set(cache.rotation(self._rotation_size(cache)))
                started = shared.seq
                held_here = set(shared.held)
            files: dict[str, CachedFile] = {}
            reads = 0
            for name in names:
                if name == self.lockspace:
                    continue
                try:
                    found = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed since the listing
                except OSError as exc:
                    files[name] = CachedFile("", self._unreadable(name, exc))
                    continue
                old = before.get(name)
                if old is not None and old.fingerprint == _fingerprint(found) and name not in rotation:
                    files[name] = self._recheck(dfd, old, held_here)
                    continue
                files[name], read = self._read_entry(dfd, name, found, held_here)
                reads += read
        except OSError as exc:
            self._failed(shared, f"lease directory {self.directory}: {exc.strerror}")
            return
        finally:
            os.close(dfd)
        with cache.lock, shared.lock:
            for name, seq in shared.writes.items():  # a store's own writes since the pass began win
                if seq > started:
                    current = cache.files.get(name)
                    if current is None:
                        files.pop(name, None)
                    else:
                        files[name] = current
            shared.writes = {name: seq for name, seq in shared.writes.items() if seq > started}
            if files != cache.files:
                cache.version += 1
            cache.files = files
            cache.last_pass, cache.as_of = now, time.time()
            cache.reads += reads
            shared.error = ""
        self._check_lockspace(cache, shared, force=True)

    def _failed(self, shared: _Shared, message: str) -> None:
        with shared.lock:
            shared.error = message
        self._election.release(self, self._key)

    def _unreadable(self, name: str, exc: OSError) -> LeaseFile:
        reason = "symbolic link" if exc.errno == errno.ELOOP else exc.strerror
        return LeaseFile(name=name, path=os.path.join(self.directory, name), error=f"unreadable: {reason}")

    def _read_entry(self, dfd: int, name: str, found: os.stat_result,
                    held_here: set[str]) -> tuple[CachedFile, int]:
        """One file as snapshot() reads it, and its fingerprint; `held` only for a lease another
        process holds (a store of this process says so itself). The second item counts reads."""
        path = os.path.join(self.directory, name)
        fingerprint = _fingerprint(found)
        if stat.S_ISLNK(found.st_mode):
            return CachedFile(fingerprint, LeaseFile(name=name, path=path, error="unreadable: symbolic link")), 0
        if not stat.S_ISREG(found.st_mode):
            return CachedFile(fingerprint, LeaseFile(name=name, path=path, error="not a regular file")), 0
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dfd)
        except OSError as exc:
            return CachedFile(fingerprint, self._unreadable(name, exc)), 0
        try:
            info = os.fstat(fd)  # the file read, should the name have been replaced since its stat
            fingerprint = _fingerprint(info)
            if not stat.S_ISREG(info.st_mode):
                return CachedFile(fingerprint, LeaseFile(name=name, path=path, error="not a regular file")), 0
            raw = os.pread(fd, SECTOR, 0)
            try:
                record = parse_leader(raw)
            except LeaderError as exc:
                return CachedFile(fingerprint, LeaseFile(name=name, path=path, size=info.st_size, error=str(exc))), 1
            held = record.timestamp != 0 and name not in held_here and ofd.is_locked(fd)
        except OSError as exc:
            return CachedFile(fingerprint, self._unreadable(name, exc)), 1
        finally:
            os.close(fd)
        return CachedFile(fingerprint, LeaseFile(name=name, path=path, size=info.st_size, leader=record, held=held)), 1

    def _recheck(self, dfd: int, cached: CachedFile, held_here: set[str]) -> CachedFile:
        """An unchanged file: whether another process holds it is asked again (a process that died
        holding it leaves the file as it was) when it is owned and no store of this process holds it."""
        lease = cached.file
        if lease.leader is None or lease.leader.timestamp == 0 or lease.name in held_here:
            return cached if not lease.held else replace(cached, file=replace(lease, held=False))
        try:
            fd = os.open(lease.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dfd)
        except OSError:
            return cached  # the next pass sees what happened to it
        try:
            held = ofd.is_locked(fd)
        except OSError:
            return cached
        finally:
            os.close(fd)
        return cached if held == lease.held else replace(cached, file=replace(lease, held=held))

    # -- building a view ---------------------------------------------------
    def _view_from(self, cache: LeaseDirCache, shared: _Shared) -> LeaseDirSnapshot:
        mine = self._names()
        with cache.lock, shared.lock:
            # Not cache.as_of: a pass that found nothing new keeps the view (so Fleet and the Leases
            # pane redo nothing), its as_of still that of the pass it was built after.
            inputs = (self._key, cache.version, cache.last_pass is not None, shared.held_version, mine, shared.live,
                      shared.error)
            if self._view is not None and inputs == self._built:
                return self._view
            if shared.error:
                view = self._error_snapshot(shared.error)
            else:
                base, index = self._base(cache, shared)
                files = list(base)
                own: dict[str, tuple[LeaseFile, LeaseFile]] = {}
                for name in mine:
                    position = index.get(name)
                    if position is None or files[position].leader is None:
                        continue
                    found = self._own.get(name)
                    if found is None or found[0] is not files[position]:
                        found = (files[position], replace(files[position], held=True, daemon_owner=self.host_id))
                    own[name] = found
                    files[position] = found[1]
                self._own = own
                # held by this store, its file not in the cache yet
                files.extend(LeaseFile(name=name, path=os.path.join(self.directory, name), held=True,
                                       daemon_owner=self.host_id) for name in sorted(mine - index.keys()))
                view = LeaseDirSnapshot(
                    directory=self.directory, host_id=self.host_id, lockspace=self.lockspace, files=tuple(files),
                    live_host_ids=shared.live, daemon_held=mine, complete=cache.last_pass is not None,
                    as_of=cache.as_of,
                )
        self._built, self._view = inputs, view
        return view

    @staticmethod
    def _base(cache: LeaseDirCache, shared: _Shared) -> tuple[tuple[LeaseFile, ...], dict[str, int]]:
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

    def _error_view(self, message: str) -> LeaseDirSnapshot:
        inputs = ("error", message)
        if self._view is None or inputs != self._built:
            self._built, self._view = inputs, self._error_snapshot(message)
        return self._view

    def _error_snapshot(self, message: str) -> LeaseDirSnapshot:
        return LeaseDirSnapshot(directory=self.directory, host_id=self.host_id, lockspace=self.lockspace,
                                error=message)

    # -- reading -----------------------------------------------------------
    def _open_dir(self) -> int:
        """The lease directory's fd: its entries are looked up in it (dir_fd), never by a path that a
        renamed or swapped component could lead elsewhere between two steps."""
        # The configured directory itself may be a symlink (to an NFS mount, say): the operator chose
        # it, so it is followed, once, here; entries inside it never are.
        return os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def snapshot(self) -> LeaseDirSnapshot:
        """Every file of the directory with its leader record and whether it is held, read now
        (cleanup, dry runs): polls use poll_snapshot()."""
        try:
            dfd = self._open_dir()
            try:
                names = sorted(os.listdir(dfd))
                files = tuple(self._read_file(dfd, name) for name in names if name != self.lockspace)
            finally:
                os.close(dfd)
        except OSError as exc:
            return LeaseDirSnapshot(
                directory=self.directory,
                host_id=self.host_id,
                lockspace=self.lockspace,
                error=f"lease directory {self.directory}: {exc.strerror}",
            )
        mine = self._names()
        files = tuple(replace(f, daemon_owner=self.host_id) if f.name in mine and f.leader is not None else f
                      for f in files)
        return LeaseDirSnapshot(
            directory=self.directory,
            host_id=self.host_id,
            lockspace=self.lockspace,
            files=files,
            live_host_ids=self.live_host_ids(),
            daemon_held=mine,
            as_of=time.time(),
        )

    def _read_file(self, dfd: int, name: str) -> LeaseFile:
        path = os.path.join(self.directory, name)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dfd)
        except OSError as exc:
            reason = "symbolic link" if exc.errno == errno.ELOOP else exc.strerror
            return LeaseFile(name=name, path=path, error=f"unreadable: {reason}")
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return LeaseFile(name=name, path=path, error="not a regular file")
            raw = os.pread(fd, SECTOR, 0)
            held = ofd.is_locked(fd)
        except OSError as exc:
            return LeaseFile(name=name, path=path, error=f"unreadable: {exc.strerror}")
        finally:
            os.close(fd)
        try:
            record = parse_leader(raw)
        except LeaderError as exc:
            return LeaseFile(name=name, path=path, size=info.st_size, error=str(exc))
        return LeaseFile(name=name, path=path, size=info.st_size, leader=record, held=held)

    # -- cleanup -----------------------------------------------------------
    def cleanup(
        self,
        names: Iterable[str] | None = None,
        *,
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
    ) -> CleanupReport:
        """Remove each lease file only while holding its lease, as virt-sanlock-cleanup does."""
        try:
            dfd = self._open_dir()
        except OSError as exc:
            raise LeaseDirError(exc.errno, f"lease directory {self.directory}: {exc.strerror}") from exc
        try:
            try:
                listing = sorted(os.listdir(dfd))
            except OSError as exc:
                raise LeaseDirError(exc.errno, f"lease directory {self.directory}: {exc.strerror}") from exc
            wanted = None if names is None else set(names)
            todo = [n for n in listing if n != self.lockspace and (wanted is None or n in wanted)]
            outcomes = []
            for index, name in enumerate(todo, 1):
                outcome = self._cleanup_one(dfd, name, dry_run)
                if outcome.removed and not dry_run:
                    self._wrote(name, None, None, held=None)  # gone from every view at its next poll
                outcomes.append(outcome)
                if progress is not None:
                    progress(index, len(todo), outcome)
        finally:
            os.close(dfd)
        return CleanupReport(lockspace=self.lockspace, outcomes=tuple(outcomes))

    def _cleanup_one(self, dfd: int, name: str, dry_run: bool) -> CleanupOutcome:
        path = os.path.join(self.directory, name)
        if why := name_refusal(name):
            return CleanupOutcome(name, path, removed=False, reason=why)
        try:
            fd = os.open(name, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dfd)
        except OSError as exc:
            reason = "symbolic link, not followed" if exc.errno == errno.ELOOP else exc.strerror
            return CleanupOutcome(name, path, removed=False, reason=reason)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return CleanupOutcome(name, path, removed=False, reason="not a regular file")
            # a dry run only asks: taking the lock, even briefly, would fail a guest starting meanwhile
            if (ofd.is_locked(fd) if dry_run else not ofd.try_lock(fd)):
                return CleanupOutcome(name, path, removed=False, reason="lease is held")
            try:
                leader = parse_leader(os.pread(fd, SECTOR, 0))
            except LeaderError as exc:
                return CleanupOutcome(name, path, removed=False, reason=f"not a lease: {exc}")
            mine = os.fstat(fd)
            why = refusal(name, leader, self.lockspace, mine.st_size)  # what sanlock would refuse
            if why:
                return CleanupOutcome(name, path, removed=False, reason=why)
            try:  # the name must still be the file whose lock is held: never remove what replaced it
                on_disk = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                return CleanupOutcome(name, path, removed=False, reason="vanished")
            if (on_disk.st_dev, on_disk.st_ino) != (mine.st_dev, mine.st_ino):
                return CleanupOutcome(name, path, removed=False, reason="replaced while checking")
            if not dry_run:
                os.unlink(name, dir_fd=dfd)  # still holding the lease: nobody can be using it
            return CleanupOutcome(name, path, removed=True)
        except OSError as exc:
            return CleanupOutcome(name, path, removed=False, reason=exc.strerror or str(exc))
        finally:
            os.close(fd)  # closing drops the lock


_DELTA_MAGIC = DELTA_DISK_MAGIC.to_bytes(4, "little")


def _live_ids(fd: int) -> tuple[int, ...]:
    """host_ids with a renewed delta lease in the lockspace file open as fd."""
    live = []
    for _offset, data in _data_extents(fd, SECTOR * MAX_HOST_ID):
        for at in range(0, len(data) - SECTOR + 1, SECTOR):
            if data[at:at + 4] != _DELTA_MAGIC:
                continue
            try:
                record = parse_leader(data[at:at + SECTOR], magic=DELTA_DISK_MAGIC)
            except LeaderError:
                continue
            if record.timestamp:
                live.append(record.owner_id)
    return tuple(sorted(live))


def _data_extents(fd: int, limit: int):  # noqa: ANN202 - Iterator[tuple[int, bytes]]
    """(offset, bytes) of each stretch of the file's first `limit` bytes that holds data, holes
    skipped (SEEK_DATA/SEEK_HOLE; a filesystem without them reports the whole file as data).
    Extents start on a block boundary, so sector offsets within them stay sector-aligned."""
    end = min(os.fstat(fd).st_size, limit)
    pos = 0
    while pos < end:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # nothing but hole from here
                return
            raise
        if start >= end:
            return
        stop = min(os.lseek(fd, start, os.SEEK_HOLE), end)
        yield start, os.pread(fd, stop - start, start)
        pos = stop


def write_free_lease(directory: str, disk_path: str, last_owner: int = 0, lver: int = 1) -> str:
    """Create an initialised, unowned lease file, as a stopped guest leaves behind."""
    name = sanlock_lease_name(disk_path)
    path = os.path.join(directory, name)
    record = pack_leader(space_name=LOCKSPACE_NAME, resource_name=name, owner_id=last_owner,
                         owner_generation=1 if last_owner else 0, lver=lver, timestamp=0)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.ftruncate(fd, LEASE_FILE_SIZE)
        os.pwrite(fd, record, 0)
    finally:
        os.close(fd)
    return path

"""An embedded store's incremental polls: poll_snapshot() costs what changed.

What a store holds is known without I/O; the files come from the cache shared by every store of
this process on the directory (virttui.locks.embeddedcache), which the store elected its reader
passes over at most every slow_interval. A view is rebuilt only when what it was built from moved.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import replace

from virttui.locks.dircache import CachedFile, LeaseDirCache
from virttui.locks.embeddedcache import LeaseDirMember, SharedDir, shared_base
from virttui.locks.embeddedfiles import fingerprint_of, read_entry, recheck, unreadable
from virttui.locks.model import LeaseDirSnapshot, LeaseFile


class IncrementalViews(LeaseDirMember):
    """The incremental poll views of an EmbeddedLeaseStore (which sets full_interval, and reads
    live_host_ids from its lockspace file)."""

    full_interval: float

    def live_host_ids(self) -> tuple[int, ...]:
        raise NotImplementedError  # EmbeddedLeaseStore's

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

    def _check_lockspace(self, cache: LeaseDirCache, shared: SharedDir, *, force: bool) -> None:
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

    def _pass(self, cache: LeaseDirCache, shared: SharedDir, now: float) -> None:
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
                    files[name] = CachedFile("", unreadable(self.directory, name, exc))
                    continue
                old = before.get(name)
                if old is not None and old.fingerprint == fingerprint_of(found) and name not in rotation:
                    files[name] = recheck(dfd, old, held_here)
                    continue
                files[name], read = read_entry(self.directory, dfd, name, found, held_here)
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

    def _failed(self, shared: SharedDir, message: str) -> None:
        with shared.lock:
            shared.error = message
        self._election.release(self, self._key)

    # -- building a view ---------------------------------------------------
    def _view_from(self, cache: LeaseDirCache, shared: SharedDir) -> LeaseDirSnapshot:
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
                base, index = shared_base(cache, shared)
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

    def _error_view(self, message: str) -> LeaseDirSnapshot:
        inputs = ("error", message)
        if self._view is None or inputs != self._built:
            self._built, self._view = inputs, self._error_snapshot(message)
        return self._view

    def _error_snapshot(self, message: str) -> LeaseDirSnapshot:
        return LeaseDirSnapshot(directory=self.directory, host_id=self.host_id, lockspace=self.lockspace,
                                error=message)

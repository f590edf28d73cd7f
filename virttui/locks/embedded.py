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

Here the store itself: its lockspace, its leases, a fresh snapshot and cleanup. Its incremental
polls are virttui.locks.embeddedpoll, the cache they share virttui.locks.embeddedcache, and the
files read one by one virttui.locks.embeddedfiles.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from virttui.drivers.errors import LeaseConflict
from virttui.locks import ofd
from virttui.locks.embeddedcleanup import cleanup_one
from virttui.locks.embeddedfiles import LEASE_FILE_SIZE, SECTOR, live_ids, read_lease_file
from virttui.locks.embeddedpoll import IncrementalViews
from virttui.locks.leader import (
    DELTA_DISK_MAGIC,
    DELTA_DISK_VERSION,
    LeaderError,
    pack_leader,
    parse_leader,
)
from virttui.locks.model import (
    LOCKSPACE_NAME,
    CleanupOutcome,
    CleanupReport,
    LeaderRecord,
    LeaseDirSnapshot,
)
from virttui.locks.naming import sanlock_lease_name
from virttui.locks.readers import DEFAULT_FULL_INTERVAL, DEFAULT_SLOW_INTERVAL, ELECTION, ReaderElection

ProgressCallback = Callable[[int, int, CleanupOutcome], None]



class LeaseDirError(OSError):
    """The lease directory cannot be created or read."""



class EmbeddedLeaseStore(IncrementalViews):
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
        self._held = {}  # lease path -> fd holding its lock
        self._mutex = threading.RLock()  # acquire() records what it wrote (see _wrote) while holding it
        self._key = None  # ("embedded", st_dev, st_ino, lockspace) of the directory
        self._key_checked = None
        self._cache = None
        self._shared = None
        self._built = None  # what self._view was built from
        self._view = None
        self._own = {}  # a base file, and it as this store's

    # -- lockspace ---------------------------------------------------------
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
                return live_ids(handle.fileno())
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

    # -- reading -----------------------------------------------------------
    def snapshot(self) -> LeaseDirSnapshot:
        """Every file of the directory with its leader record and whether it is held, read now
        (cleanup, dry runs): polls use poll_snapshot()."""
        try:
            dfd = self._open_dir()
            try:
                names = sorted(os.listdir(dfd))
                files = tuple(read_lease_file(self.directory, dfd, name) for name in names if name != self.lockspace)
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
                outcome = cleanup_one(self.directory, self.lockspace, dfd, name, dry_run)
                if outcome.removed and not dry_run:
                    self._wrote(name, None, None, held=None)  # gone from every view at its next poll
                outcomes.append(outcome)
                if progress is not None:
                    progress(index, len(todo), outcome)
        finally:
            os.close(dfd)
        return CleanupReport(lockspace=self.lockspace, outcomes=tuple(outcomes))


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

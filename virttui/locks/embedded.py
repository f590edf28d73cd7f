"""Auto disk leases for embedded hosts: sanlock-format files guarded by kernel file locks.

Each lease file carries a real sanlock leader record (so the same reader
serves embedded and real hosts), while exclusion comes from an open file
description lock (virttui.locks.ofd): two embedded hosts in one process exclude
each other exactly as two processes do, and the status asks each file whether
it is held without taking anything.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable

from virttui.drivers.errors import LeaseConflict
from virttui.locks import ofd
from virttui.locks.candidates import name_refusal, refusal
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
    LeaseDirSnapshot,
    LeaseFile,
)
from virttui.locks.naming import sanlock_lease_name

LEASE_FILE_SIZE = 1024 * 1024  # what libvirt's sanlock plugin allocates
SECTOR = 512

ProgressCallback = Callable[[int, int, CleanupOutcome], None]


class LeaseDirError(OSError):
    """The lease directory cannot be created or read."""


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
    ) -> None:
        self.directory = os.path.abspath(directory)
        self.host_id = host_id
        self.host_name = host_name or f"host{host_id}"
        self.lockspace = lockspace
        self._clock = clock
        self._held: dict[str, int] = {}  # lease path -> fd holding its lock
        self._mutex = threading.Lock()

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

    def leave_lockspace(self) -> None:
        try:
            fd = os.open(self.lockspace_path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return
        try:
            self._write_delta(fd, timestamp=0)
        finally:
            os.close(fd)

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

        Polled with every embedded poll: only the file's data extents are read (it is 1 MiB, sparse,
        with a sector written per host that joined), not 2000 empty sectors (0.6 ms a poll).
        """
        live = []
        try:
            with open(self.lockspace_path, "rb") as handle:
                for _offset, data in _data_extents(handle.fileno(), SECTOR * MAX_HOST_ID):
                    for at in range(0, len(data) - SECTOR + 1, SECTOR):
                        if data[at:at + 4] != _DELTA_MAGIC:
                            continue
                        try:
                            record = parse_leader(data[at:at + SECTOR], magic=DELTA_DISK_MAGIC)
                        except LeaderError:
                            continue
                        if record.timestamp:
                            live.append(record.owner_id)
        except OSError:
            return ()
        return tuple(sorted(live))

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
                self._write_owner(fd, os.path.basename(path), disk_path)
            except BaseException:
                os.close(fd)  # closing drops the lock
                raise
            self._held[path] = fd
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

    def _write_owner(self, fd: int, name: str, disk_path: str) -> None:
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

    def release(self, disk_path: str) -> None:
        """Release one disk's lease; the file stays, marked free (timestamp 0)."""
        path = self.lease_path(disk_path)
        with self._mutex:
            fd = self._held.pop(path, None)
        if fd is None:
            return
        try:
            record = parse_leader(os.pread(fd, SECTOR, 0))
            os.pwrite(
                fd,
                pack_leader(
                    space_name=record.space_name,
                    resource_name=record.resource_name,
                    owner_id=record.owner_id,
                    owner_generation=record.owner_generation,
                    lver=record.lver,
                    timestamp=0,
                ),
                0,
            )
        except (OSError, LeaderError):
            pass  # releasing must never fail; dropping the lock below is what matters
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

    def holds(self, disk_path: str) -> bool:
        return self.lease_path(disk_path) in self._held

    # -- reading -----------------------------------------------------------
    def _open_dir(self) -> int:
        """The lease directory's fd: its entries are looked up in it (dir_fd), never by a path that a
        renamed or swapped component could lead elsewhere between two steps."""
        # The configured directory itself may be a symlink (to an NFS mount, say): the operator chose
        # it, so it is followed, once, here; entries inside it never are.
        return os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def snapshot(self) -> LeaseDirSnapshot:
        """Every file of the directory with its leader record and whether it is held."""
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
        return LeaseDirSnapshot(
            directory=self.directory,
            host_id=self.host_id,
            lockspace=self.lockspace,
            files=files,
            live_host_ids=self.live_host_ids(),
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

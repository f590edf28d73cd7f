"""Embedded hosts' lease files, one at a time: their layout, what says one changed, and reading one.

A file is read fresh for a snapshot (read_lease_file), or into the shared cache of the incremental
polls with the fingerprint it had (read_entry, recheck); the lockspace file gives the host_ids whose
delta lease is renewed (live_ids). Whether a lease is held is asked of its open file description
lock (virttui.locks.ofd), without taking anything.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from dataclasses import replace

from virttui.locks import ofd
from virttui.locks.agent import is_racy
from virttui.locks.dircache import CachedFile
from virttui.locks.leader import DELTA_DISK_MAGIC, LeaderError, parse_leader
from virttui.locks.model import MAX_HOST_ID, LeaseFile

LEASE_FILE_SIZE = 1024 * 1024  # what libvirt's sanlock plugin allocates
SECTOR = 512


def fingerprint_of(info: os.stat_result) -> str:
    """What says a file may have changed since it was read: size, times and inode."""
    return f"{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}:{info.st_ino}"


def read_fingerprint_of(info: os.stat_result) -> str:
    """The fingerprint of a file just read: none while the read is racy (agent.is_racy), so the
    next pass reads the file again."""
    return "" if is_racy(info, time.time()) else fingerprint_of(info)


def read_lease_file(directory: str, dfd: int, name: str) -> LeaseFile:
    """One file of the directory open as dfd, read now: its leader record and whether it is held."""
    path = os.path.join(directory, name)
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


def unreadable(directory: str, name: str, exc: OSError) -> LeaseFile:
    reason = "symbolic link" if exc.errno == errno.ELOOP else exc.strerror
    return LeaseFile(name=name, path=os.path.join(directory, name), error=f"unreadable: {reason}")


def read_entry(directory: str, dfd: int, name: str, found: os.stat_result,
               held_here: set[str]) -> tuple[CachedFile, int]:
    """One file as read_lease_file() reads it, and its fingerprint; `held` only for a lease another
    process holds (a store of this process says so itself). The second item counts reads."""
    path = os.path.join(directory, name)
    fingerprint = fingerprint_of(found)
    if stat.S_ISLNK(found.st_mode):
        return CachedFile(fingerprint, LeaseFile(name=name, path=path, error="unreadable: symbolic link")), 0
    if not stat.S_ISREG(found.st_mode):
        return CachedFile(fingerprint, LeaseFile(name=name, path=path, error="not a regular file")), 0
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dfd)
    except OSError as exc:
        return CachedFile(fingerprint, unreadable(directory, name, exc)), 0
    try:
        info = os.fstat(fd)  # the file read, should the name have been replaced since its stat
        fingerprint = read_fingerprint_of(info)
        if not stat.S_ISREG(info.st_mode):
            return CachedFile(fingerprint, LeaseFile(name=name, path=path, error="not a regular file")), 0
        raw = os.pread(fd, SECTOR, 0)
        try:
            record = parse_leader(raw)
        except LeaderError as exc:
            return CachedFile(fingerprint, LeaseFile(name=name, path=path, size=info.st_size, error=str(exc))), 1
        held = record.timestamp != 0 and name not in held_here and ofd.is_locked(fd)
    except OSError as exc:
        return CachedFile(fingerprint, unreadable(directory, name, exc)), 1
    finally:
        os.close(fd)
    return CachedFile(fingerprint, LeaseFile(name=name, path=path, size=info.st_size, leader=record, held=held)), 1


def recheck(dfd: int, cached: CachedFile, held_here: set[str]) -> CachedFile:
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


_DELTA_MAGIC = DELTA_DISK_MAGIC.to_bytes(4, "little")


def live_ids(fd: int) -> tuple[int, ...]:
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

"""Removing one embedded lease file, only while holding its lease, as virt-sanlock-cleanup does."""

from __future__ import annotations

import errno
import os
import stat
from typing import cast

from virttui.locks import ofd
from virttui.locks.candidates import name_refusal, refusal
from virttui.locks.embeddedfiles import SECTOR
from virttui.locks.leader import LeaderError, parse_leader
from virttui.locks.model import CleanupOutcome


def cleanup_one(directory: str, lockspace: str, dfd: int, name: str, dry_run: bool) -> CleanupOutcome:
    """Remove `name` from the directory open as dfd (of that path and lockspace) if nothing holds its
    lease and sanlock would remove it too; a dry run only says whether it would be removed."""
    path = os.path.join(directory, name)
    if why := name_refusal(name):
        return CleanupOutcome(name, path, removed=False, reason=why)
    try:
        fd = os.open(name, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dfd)
    except OSError as exc:
        reason = "symbolic link, not followed" if exc.errno == errno.ELOOP else exc.strerror
        return CleanupOutcome(name, path, removed=False, reason=cast(str, reason))  # os.open's errors have a strerror
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
        why = refusal(name, leader, lockspace, mine.st_size)  # what sanlock would refuse
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


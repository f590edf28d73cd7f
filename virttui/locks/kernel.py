"""The kernel's lock table (/proc/locks): which files carry a flock/OFD/POSIX lock.

Reading the table tells whether a lease file is held without trying to take
the lock ourselves, which would make a concurrent domain start fail.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

PROC_LOCKS = "/proc/locks"


@dataclass(frozen=True)
class KernelLock:
    kind: str  # FLOCK, OFDLCK, POSIX
    access: str  # READ or WRITE
    pid: int
    device: tuple[int, int]
    inode: int


def parse_proc_locks(text: str) -> list[KernelLock]:
    """Parse /proc/locks lines; lines that do not fit are skipped, never fatal."""
    locks: list[KernelLock] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 6 or parts[1] == "->":
            continue  # blocked waiters are shown as "N: -> FLOCK …"
        try:
            kind, access, pid, ident = parts[1], parts[3], int(parts[4]), parts[5]
            major, minor, inode = ident.split(":")
            locks.append(KernelLock(kind, access, pid, (int(major, 16), int(minor, 16)), int(inode)))
        except ValueError:
            continue
    return locks


def locked_inodes(path: str = PROC_LOCKS) -> set[tuple[int, int, int]]:
    """(major, minor, inode) of every locked file; empty when the table is unreadable."""
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return set()
    return {(lock.device[0], lock.device[1], lock.inode) for lock in parse_proc_locks(text)}


def inode_key(stat: os.stat_result) -> tuple[int, int, int]:
    return (os.major(stat.st_dev), os.minor(stat.st_dev), stat.st_ino)

"""Open file description locks (fcntl F_OFD_*): whole-file exclusive locks for embedded leases.

Like flock(2) they belong to the open file description, so two embedded hosts in one process
exclude each other exactly as two processes do (POSIX record locks would not). Unlike flock,
whether anyone holds one can be asked without taking it (F_OFD_GETLK), one fcntl on a file the
status reader has open anyway. With flock the status would have to read /proc/locks, whose
first read in a while waits for an RCU grace period and which lists every lock on the machine.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct

# struct flock: l_type, l_whence, l_start, l_len, l_pid, padded to the alignment of off_t
_FLOCK = "hhqqi0q"


def _request(kind: int) -> bytes:
    return struct.pack(_FLOCK, kind, os.SEEK_SET, 0, 0, 0)  # start 0, length 0: the whole file


def try_lock(fd: int) -> bool:
    """Take the exclusive lock of the file open as `fd` (opened for writing); False if anyone
    else, in this process or another, holds it. Other errors raise OSError."""
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _request(fcntl.F_WRLCK))
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def unlock(fd: int) -> None:
    """Drop this open file's lock (closing its last descriptor does too)."""
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _request(fcntl.F_UNLCK))


def is_locked(fd: int) -> bool:
    """Whether another open file holds a lock on this file; takes nothing."""
    answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _request(fcntl.F_WRLCK))
    return struct.unpack(_FLOCK, answer)[0] != fcntl.F_UNLCK

"""Reading a small file the user named, without hanging or filling memory on a wrong one.

A config or node file path can point at /dev/zero, a FIFO or a multi-gigabyte log by mistake:
plain `open().read()` then blocks forever or eats all memory. These are refused with an OSError
(so callers' existing "PATH: reason" handling reports them in one line).
"""

from __future__ import annotations

import errno
import os
import stat

MAX_FILE_BYTES = 16 * 1024 * 1024  # far above any real libvirt XML, config or known_hosts file


def read_bounded(path: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file at path; OSError if it is not one or holds more than limit bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # O_NONBLOCK: opening a FIFO can't hang
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        if stat.S_ISCHR(info.st_mode) and info.st_rdev == os.stat(os.devnull).st_rdev:
            return b""  # /dev/null: an empty file, as OpenSSH's known_hosts=/dev/null habit means it
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        chunks, size = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise OSError(errno.EFBIG, f"larger than {limit // (1024 * 1024)} MiB", path)
        return b"".join(chunks)
    finally:
        os.close(fd)

"""The log file: private to its owner, never written through a planted symlink."""

from __future__ import annotations

import logging
import os
import stat


def _setup_logging(path: str | None) -> None:
    named = path is not None  # `--log /dev/stderr` is the operator's own choice: a symlink there is followed
    if path is None:
        from virttui.drivers.registry import state_dir

        path = os.path.join(state_dir(), "virttui.log")
    try:
        handler = _private_log_handler(path, follow=named)
    except OSError:
        return  # logging is a help, never a reason to fail
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _private_log_handler(path: str, *, follow: bool = False) -> logging.FileHandler:
    """The log lists every host (URIs with user names and key paths): a directory virttui creates is
    0700, the file 0600 whatever the umask, and a symlink planted at the file's name is not followed."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):  # an existing one (the cwd of `--log ./x.log`) is not virttui's to change
        os.makedirs(directory, mode=0o700, exist_ok=True)
    nofollow = 0 if follow else os.O_NOFOLLOW
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | nofollow | os.O_CLOEXEC, 0o600)
    try:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and info.st_mode & 0o077:
            os.fchmod(fd, 0o600)  # a log an older virttui left world-readable
        stream = os.fdopen(fd, "a", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise
    handler = logging.FileHandler(path, encoding="utf-8", delay=True)  # delay: it writes to our stream
    handler.stream = stream
    return handler

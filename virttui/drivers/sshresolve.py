"""Asking OpenSSH how it would reach a host: `ssh -G`, bounded in time and size, its answer read as
`key value` lines.

`ssh -G` only prints the configuration it resolved (Include, Match, Host patterns, tokens,
canonicalisation: all OpenSSH's own) and never connects. It runs from an argv list, never a shell;
the host and user it is given come from a URI, so they are checked first: an argument starting with
'-' would be an option, and whitespace or a control character has no business in either. A `Match
exec` in the config runs through OpenSSH's own resolver here, never through a shell of virttui's.
Standard library only.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence

RESOLVE_TIMEOUT = 5.0  # canonicalisation's DNS lookups or a Match exec can take a moment; a hang can't hold a host
MAX_OUTPUT = 1 << 20  # a real answer is a few KiB
MAX_ERROR = 64 * 1024


class ResolveFailed(Exception):
    """`ssh -G` could not say how to reach the host; str() is one line."""


Directives = dict[str, list[str]]  # lowercase keyword -> its values, in the order ssh printed them


def find_ssh() -> str | None:
    """The OpenSSH client on PATH, if any."""
    return shutil.which("ssh")


def check_argument(value: str, what: str) -> None:
    """Refuse what would not reach ssh as one plain argument: an option, whitespace, control characters."""
    if not value or value.startswith("-") or any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ResolveFailed(f"{what} {value[:64]!r} cannot be given to ssh")


def ssh_g_argv(ssh: str, host: str, *, user: str = "", port: int | None = None,
               config: Sequence[str] = ()) -> list[str]:
    """`ssh -G` for host; the URI's user and port are on its command line, where they win as libvirt's ssh has them."""
    check_argument(host, "host")
    argv = [ssh, "-G", "-T", *config]  # -T: else ssh 9 warns on stderr that stdin is no terminal
    if user:
        check_argument(user, "user")
        argv += ["-l", user]
    if port is not None:
        argv += ["-p", str(int(port))]
    return [*argv, "--", host]


def run_ssh_g(argv: Sequence[str], timeout: float | None = None) -> Directives:
    """The directives `ssh -G` printed; ResolveFailed if it failed, hung past the timeout or printed
    something else. Its process group is killed on the way out, with any Match exec it started."""
    timeout = RESOLVE_TIMEOUT if timeout is None else timeout
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
    except OSError as exc:
        raise ResolveFailed(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    try:
        status, out, err = _collect(proc, timeout)
    finally:
        _end(proc)
    if status != 0:
        raise ResolveFailed(f"ssh -G failed: {_first_line(err) or f'exit status {status}'}")
    return parse_directives(out)


def _collect(proc: subprocess.Popen, timeout: float) -> tuple[int, bytes, bytes]:
    """Its exit status, stdout and stderr, each bounded; ResolveFailed past the deadline. A grandchild
    holding the pipes open can't stretch it: the deadline covers reading as well as waiting."""
    assert proc.stdout is not None and proc.stderr is not None
    deadline = time.monotonic() + timeout
    out, err = bytearray(), bytearray()
    limits = {id(out): MAX_OUTPUT, id(err): MAX_ERROR}
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ, out)
        selector.register(proc.stderr, selectors.EVENT_READ, err)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise ResolveFailed(f"ssh -G did not answer within {timeout:g} s")
            for key, _ in selector.select(left):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                buffer = key.data
                buffer += chunk
                if len(buffer) > limits[id(buffer)]:
                    raise ResolveFailed("ssh -G printed more than a configuration")
    try:
        status = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise ResolveFailed(f"ssh -G did not answer within {timeout:g} s") from None
    return status, bytes(out), bytes(err)


def _end(proc: subprocess.Popen) -> None:
    if proc.returncode is None:  # not reaped yet, so its group id is still its own to signal
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: a Match exec it started goes with it
        except OSError:
            pass
    proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def parse_directives(data: bytes) -> Directives:
    """`keyword value` lines into a mapping, keywords lowercased; ResolveFailed on any other line.
    Values are decoded as file names are (a path need not be UTF-8)."""
    directives: Directives = {}
    for number, raw in enumerate(data.split(b"\n"), 1):
        line = raw.rstrip(b"\r")
        if not line:
            continue
        keyword, _, value = line.partition(b" ")
        if not (keyword.isascii() and keyword.isalnum()):
            raise ResolveFailed(f"ssh -G printed something other than a configuration (line {number})")
        # lowercase, but for one that ssh 9 prints as canonicalizePermittedcnames
        directives.setdefault(keyword.decode().lower(), []).append(os.fsdecode(value))
    return directives


def _first_line(err: bytes) -> str:
    """ssh's first complaint, printable and short (its last line only counts the complaints)."""
    for raw in err.decode("utf-8", "replace").splitlines():
        line = "".join(ch if ch.isprintable() else " " for ch in raw).strip()
        if line and "terminating," not in line:
            return line[:300]
    return ""

"""Transports: how a driver runs commands on its host (here, or over SSH).

A transport runs one argv at a time and returns its exit code and output; it
also opens long-lived line streams (for `virsh event --loop`). The virsh
driver sees only this interface, so local and remote hosts share one driver.
"""

from __future__ import annotations

import logging
import os
import selectors
import shlex
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence

from virttui.drivers.errors import ConnectionFailed
from virttui.drivers.processgroup import end_process_group
from virttui.records import record

log = logging.getLogger(__name__)

COMMAND_TIMEOUT = 30.0  # seconds any single command may take before the host is called unresponsive
# What a host may send: more is a broken or hostile host, dropped with an error rather than
# buffered until the console runs out of memory.
MAX_COMMAND_OUTPUT = 64 * 1024 * 1024  # one command's stdout (and, apart, its stderr)
MAX_LINE = 1024 * 1024  # one line of a line stream (an event, an agent's outcome)
READ_CHUNK = 65536


def mib(size: int) -> str:
    """A cap as its error messages name it ("64 MiB")."""
    return f"{size / (1024 * 1024):g} MiB"


class OverCap(ConnectionFailed):
    """A host sent more than a cap allows; what it sends next is not read."""


def over_cap(who: str, size: int = MAX_COMMAND_OUTPUT, what: str = "answer") -> OverCap:
    """The error for a host whose answer (or one line of it) went past a cap."""
    return OverCap(f"{who}: {what} over {mib(size)}")


@record
class CommandResult:
    """What one command left behind."""

    returncode: int
    stdout: str
    stderr: str


class LineStream(ABC):
    """A long-running command's stdout, line by line; readline() returns "" at its end."""

    @abstractmethod
    def readline(self) -> str:
        """The next line (with its newline), or "" once the stream ended."""

    @abstractmethod
    def close(self) -> None:
        """Stop the command; a blocked readline() returns ""."""

    def exit_status(self) -> int | None:
        """The command's exit status once its output has ended, None when unknown."""
        return None


class Transport(ABC):
    """Runs commands on one host. Implementations are thread-safe."""

    description: str = ""

    def connect(self) -> None:  # noqa: B027 - a no-op unless the transport keeps a connection
        """Open whatever connection the transport needs; raises ConnectionFailed."""

    @abstractmethod
    def run(self, argv: Sequence[str], *, timeout: float = COMMAND_TIMEOUT) -> CommandResult:
        """Run argv to completion; ConnectionFailed when the host cannot be reached or times out."""

    @abstractmethod
    def stream(self, argv: Sequence[str]) -> LineStream:
        """Start a long-running command and return its output stream."""

    def run_lines(self, argv: Sequence[str], *, line_timeout: float) -> LineStream:
        """Run a command that ends, reading its output line by line as it comes.

        readline() gives up (returns "") when no line came for line_timeout seconds, where the
        transport can tell; exit_status() is known once the output ended.
        """
        return self.stream(argv)

    def close(self) -> None:  # noqa: B027 - a no-op unless the transport keeps a connection
        """Release connections; safe to call more than once."""


def line_buffered(argv: Sequence[str]) -> list[str]:
    """A shell command running argv with stdout line-buffered (virsh block-buffers into a pipe)."""
    quoted = shlex.join(argv)
    return ["sh", "-c", f"if command -v stdbuf >/dev/null 2>&1; then exec stdbuf -oL {quoted}; else exec {quoted}; fi"]


class _ProcessStream(LineStream):
    def __init__(self, proc: subprocess.Popen, name: str = "") -> None:
        self._proc = proc
        self._name = name or "local command"
        self._ended = False

    def readline(self) -> str:
        stdout = self._proc.stdout
        if stdout is None or self._ended:
            return ""
        try:  # at most MAX_LINE + 1 characters: a line without end must not grow without bound
            line = stdout.readline(MAX_LINE + 1)
        except (OSError, ValueError):
            return ""
        if len(line) > MAX_LINE and not line.endswith("\n"):
            log.error("%s: a line over %s; its stream is ended", self._name, mib(MAX_LINE))
            self._ended = True
            self.close()
            return ""
        return line

    def exit_status(self) -> int | None:
        try:
            return self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        end_process_group(self._proc, grace=5)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


class LocalTransport(Transport):
    """Commands run on this machine as child processes."""

    description = "local"

    def __init__(self) -> None:
        self._children: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def run(self, argv: Sequence[str], *, timeout: float = COMMAND_TIMEOUT) -> CommandResult:
        try:
            proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=_c_locale())
        except FileNotFoundError:
            raise ConnectionFailed(f"{argv[0]}: command not found on this machine") from None
        except OSError as exc:
            raise ConnectionFailed(f"{argv[0]}: {exc.strerror}") from None
        try:
            returncode, out, err = _collect(proc, timeout, argv[0])
        except subprocess.TimeoutExpired:
            raise ConnectionFailed(f"{argv[0]} did not answer within {timeout:g} s") from None
        except OSError as exc:
            raise ConnectionFailed(f"{argv[0]}: {exc.strerror}") from None
        return CommandResult(returncode, _decode(out), _decode(err))

    def interactive(self, argv: Sequence[str]) -> int:
        """Run argv on this terminal (the caller has handed it over) and return its exit status."""
        try:
            return subprocess.call(list(argv), env=_c_locale())
        except OSError as exc:
            raise ConnectionFailed(f"{argv[0]}: {exc.strerror}") from None

    def stream(self, argv: Sequence[str]) -> LineStream:
        try:
            proc = subprocess.Popen(line_buffered(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, text=True, errors="replace", env=_c_locale(),
                                    start_new_session=True)
        except OSError as exc:
            raise ConnectionFailed(f"{argv[0]}: {exc.strerror}") from None
        return _ProcessStream(proc, argv[0])


def _collect(proc: subprocess.Popen, timeout: float, name: str) -> tuple[int, bytes, bytes]:
    """A child's exit status, stdout and stderr, like communicate() but each at most MAX_COMMAND_OUTPUT
    (else OverCap; TimeoutExpired past the timeout); the child is killed unless it ended."""
    assert proc.stdout is not None and proc.stderr is not None
    deadline = time.monotonic() + timeout
    out, err = bytearray(), bytearray()
    try:
        with selectors.DefaultSelector() as selector:  # not select(): a console with many hosts has fds past 1024
            selector.register(proc.stdout, selectors.EVENT_READ, out)
            selector.register(proc.stderr, selectors.EVENT_READ, err)
            while selector.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise subprocess.TimeoutExpired(proc.args, timeout)
                for key, _ in selector.select(left):
                    chunk = os.read(key.fd, READ_CHUNK)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        continue
                    buffer = key.data
                    buffer += chunk
                    if len(buffer) > MAX_COMMAND_OUTPUT:
                        raise over_cap(name)
        return proc.wait(timeout=max(0.0, deadline - time.monotonic())), bytes(out), bytes(err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def _c_locale() -> dict[str, str]:
    """virsh's messages in English, whatever the operator's locale, so errors can be classified."""
    env = dict(os.environ)
    env["LC_ALL"] = "C.UTF-8"
    return env


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")

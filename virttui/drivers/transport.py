"""Transports: how a driver runs commands on its host (here, or over SSH).

A transport runs one argv at a time and returns its exit code and output; it
also opens long-lived line streams (for `virsh event --loop`). The virsh
driver sees only this interface, so local and remote hosts share one driver.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from virttui.drivers.errors import ConnectionFailed

COMMAND_TIMEOUT = 30.0  # seconds any single command may take before the host is called unresponsive


@dataclass(frozen=True)
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

    def connect(self) -> None:
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

    def close(self) -> None:
        """Release connections; safe to call more than once."""


def line_buffered(argv: Sequence[str]) -> list[str]:
    """A shell command running argv with stdout line-buffered (virsh block-buffers into a pipe)."""
    quoted = shlex.join(argv)
    return ["sh", "-c", f"if command -v stdbuf >/dev/null 2>&1; then exec stdbuf -oL {quoted}; else exec {quoted}; fi"]


class _ProcessStream(LineStream):
    def __init__(self, proc: subprocess.Popen) -> None:
        self._proc = proc

    def readline(self) -> str:
        stdout = self._proc.stdout
        if stdout is None:
            return ""
        try:
            return stdout.readline()
        except (OSError, ValueError):
            return ""

    def exit_status(self) -> int | None:
        try:
            return self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, signal.SIGTERM)
            except OSError:
                pass
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
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
            proc = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                                  env=_c_locale())
        except FileNotFoundError:
            raise ConnectionFailed(f"{argv[0]}: command not found on this machine") from None
        except subprocess.TimeoutExpired:
            raise ConnectionFailed(f"{argv[0]} did not answer within {timeout:g} s") from None
        except OSError as exc:
            raise ConnectionFailed(f"{argv[0]}: {exc.strerror}") from None
        return CommandResult(proc.returncode, _decode(proc.stdout), _decode(proc.stderr))

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
        return _ProcessStream(proc)


def _c_locale() -> dict[str, str]:
    """virsh's messages in English, whatever the operator's locale, so errors can be classified."""
    env = dict(os.environ)
    env["LC_ALL"] = "C.UTF-8"
    return env


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")

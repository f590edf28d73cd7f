"""How a command fails and writes: one line on stderr, a guarded stdout, nothing raw from a host."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from virttui.format import printable


class UsageError(Exception):
    """A problem with what the user asked for, reported as one line."""


class OutputError(Exception):
    """The command's output can't be written (a full disk, an I/O error): one line, exit 1, and
    never taken for a host's or a lease directory's error."""


class _GuardedOutput:
    """sys.stdout for a subcommand: a write error is an OutputError; a broken pipe stays
    BrokenPipeError (the reader left: exit 141, as for any Unix tool)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._guarded(self._stream.write, text)

    def flush(self) -> None:
        self._guarded(self._stream.flush)

    @staticmethod
    def _guarded(call: Callable[..., object], *args: object):  # noqa: ANN205 - what call returns
        try:
            return call(*args)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(f"cannot write the output: {exc.strerror or exc}") from None

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


_printable = printable  # names come from hosts: never let a control character reach the terminal

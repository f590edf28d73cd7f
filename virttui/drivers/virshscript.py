"""virsh command lines: several commands in one virsh run, cut apart at a marker of their own
(Script), as few runs as an argument's size allows (run_in_batches); every argument quoted for
virsh's own parser (virsh_quote), and domains named only by a checked UUID (check_uuid).
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable

from virttui.drivers.errors import DomainNotFound
from virttui.drivers.virshparse import new_marker, split_sections
from virttui.records import record

BATCH_BYTES = 32 * 1024  # one virsh script at most: a quarter of Linux's 128 KiB argument cap


@record
class Script:
    """One virsh command line running several commands, and the marker of its own that cuts the output."""

    text: str
    marker: str
    count: int

    def split(self, output: str) -> list[str]:
        return split_sections(output, self.count, self.marker)


def script(commands: tuple[str, ...] | list[str]) -> Script:
    marker = new_marker()
    return Script(f" ; echo {marker} ; ".join(commands), marker, len(commands))


_SEPARATOR = len(script(["", ""]).text)  # what script() puts between two commands: " ; echo MARKER ; "


def run_in_batches(commands: list[str], run: Callable[[str], str]) -> list[str]:
    """Each command's output, run by `run` in as few scripts as fit: one script is one argument (of
    `virsh` here, of the remote shell over SSH), and Linux caps an argument at 128 KiB; the
    first poll of a host with ~1600 domains made one longer than that."""
    texts: list[str] = []
    start = 0
    while start < len(commands):
        end, size = start, 0
        while end < len(commands) and (end == start or size + len(commands[end]) + _SEPARATOR <= BATCH_BYTES):
            size += len(commands[end]) + _SEPARATOR
            end += 1
        batch = script(commands[start:end])
        texts.extend(batch.split(run(batch.text)))
        start = end
    return texts


def check_uuid(uuid: str) -> str:
    try:
        return str(uuidlib.UUID(uuid))
    except (ValueError, AttributeError, TypeError):
        raise DomainNotFound(f"not a domain UUID: {uuid!r}") from None


def virsh_quote(arg: str) -> str:
    """One argument for virsh's own command-line parser: double quotes, backslash escapes."""
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'

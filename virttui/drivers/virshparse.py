"""Parsers for what virsh prints: sections, domstats, listings, nodeinfo, events, errors.

Every function takes text a host produced and either returns plain data or
raises ParseError; nothing else escapes, whatever the bytes.
"""

from __future__ import annotations

import os
import re
import uuid as uuidlib

from virttui.drivers.errors import (
    ConnectionFailed,
    DomainNotFound,
    DriverError,
    LeaseConflict,
    NotSupported,
    OperationInvalid,
    ParseError,
)
from virttui.drivers.names import escaped
from virttui.records import record


def new_marker() -> str:
    """A fresh section marker for one script: a host sees a script's marker (in /proc/*/cmdline) only
    while that script runs, so no title or description can be written with it in advance. os.urandom
    is what secrets.token_hex reads; secrets itself would load OpenSSL (hmac) at start."""
    return f"@@virttui-{os.urandom(8).hex()}@@"


def _lines(text: str) -> list[str]:
    """virsh's output lines: cut at "\n" only. str.splitlines() also cuts at "\r", "\x85", "\u2028"…,
    which libvirt allows inside domain names: one such name must not break a whole host's listing."""
    return text.split("\n")


def split_sections(text: str, count: int, marker: str) -> list[str]:
    """Cut one virsh run's output at the `echo` markers between its commands.

    One-shot virsh ends an `echo` with a newline; quiet or interactive virsh does not, so one
    newline after a marker is dropped if present. The marker is the script's own (new_marker):
    an earlier script's marker in a payload is plain text here.
    """
    parts = text.split(marker)
    if len(parts) != count:
        raise ParseError(f"virsh printed {len(parts)} sections where {count} were expected (truncated output?)")
    return [parts[0]] + [part[1:] if part.startswith("\n") else part for part in parts[1:]]


def parse_uuid_names(text: str) -> list[tuple[str, str]]:
    """`virsh list --all --uuid --name`: one "UUID NAME" line per domain."""
    pairs = []
    for line in _lines(text):
        if not line.strip():
            continue
        raw, _, name = line.partition(" ")
        try:
            uuid = str(uuidlib.UUID(raw))
        except ValueError:
            raise ParseError(f"virsh list: not a UUID: {raw[:60]!r}") from None
        if not name:
            raise ParseError(f"virsh list: domain {uuid} has no name")
        pairs.append((uuid, name))
    return pairs


def parse_names(text: str) -> set[str]:
    """`virsh list --name`: one name per line."""
    return {line for line in _lines(text) if line}


def parse_domstats(text: str) -> dict[str, dict[str, str]]:
    """`virsh domstats --raw`: "Domain: 'NAME'" blocks of "  key=value" lines."""
    stats: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in _lines(text):
        if not line.strip():
            continue
        if line.startswith("Domain: '") and line.endswith("'") and len(line) > len("Domain: ''") - 1:
            current = stats.setdefault(line[len("Domain: '"):-1], {})
        elif line.startswith("  ") and "=" in line and current is not None:
            key, _, value = line.strip().partition("=")
            current[key] = value
        else:
            raise ParseError(f"virsh domstats: unexpected line {line[:80]!r}")
    return stats


def stat_int(stats: dict[str, str], key: str, default: int | None = None) -> int | None:
    """An integer statistic; junk is a ParseError, absence the default."""
    value = stats.get(key)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ParseError(f"virsh domstats: {key}={value[:40]!r} is not an integer") from None


@record
class NodeFacts:
    """What nodeinfo, hostname and version say of a host."""

    hostname: str
    cpus: int
    memory_kib: int
    hypervisor: str
    hypervisor_version: str


def parse_node_facts(nodeinfo: str, hostname: str, version: str) -> NodeFacts:
    fields = {}
    for line in nodeinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    try:
        cpus = int(fields["CPU(s)"])
        memory = int(fields["Memory size"].split()[0])
    except (KeyError, ValueError, IndexError):
        raise ParseError("virsh nodeinfo: no CPU(s) or Memory size line") from None
    hypervisor, hv_version = "", ""
    for line in version.splitlines():
        if line.startswith("Running hypervisor:"):
            words = line.partition(":")[2].split()
            hypervisor = words[0] if words else ""
            hv_version = words[1] if len(words) > 1 else ""
    return NodeFacts(hostname.strip(), cpus, memory, hypervisor, hv_version)


_EVENT_RE = re.compile(r"^event '(?P<kind>[^']+)' for domain '(?P<name>.*)'(?:[: ].*)?$")


@record
class VirshEvent:
    """One line of `virsh event --all --loop`."""

    kind: str  # lifecycle, reboot, device-added…
    domain: str  # name; "" for events not about one domain


# Where the name ends, for the kinds whose detail is not plain `: DETAIL` (virsh-domain-event.c):
# a disk's events name the disk first, and two kinds quote words in their detail.
_NAME_ENDS = {"disk-change": "' disk ", "tray-change": "' disk ", "agent-lifecycle": "': state: '",
              "migration-iteration": "': iteration: '"}


def parse_event(line: str) -> VirshEvent | None:
    """An event line, or None for anything else virsh prints."""
    line = line.rstrip("\n")
    match = _EVENT_RE.match(line)
    if match:
        rest = line[line.find(" for domain '") + len(" for domain '"):]
        end = _NAME_ENDS.get(match["kind"])
        if end is not None and end in rest:
            return VirshEvent(match["kind"], rest[:rest.rfind(end)])
        # A name may itself contain "': "; other details never contain "'". So a line ending in "'"
        # has no detail (reboot, ...) and the name runs to that quote; one ending in "':" is followed by
        # tab-indented lines (tunable, job-completed); else the name ends at the last "': ".
        if rest.endswith("'"):
            return VirshEvent(match["kind"], rest[:-1])
        if rest.endswith("':"):
            return VirshEvent(match["kind"], rest[:-2])
        cut = rest.rfind("': ")
        return VirshEvent(match["kind"], rest[:cut] if cut >= 0 else match["name"])
    if line.startswith("event '"):
        return VirshEvent(line[len("event '"):].partition("'")[0], "")
    return None


_CONNECT_ERRORS = ("failed to connect", "Failed to connect socket", "no connection driver", "Cannot recv data",
                   "End of file while reading data", "client socket is closed", "unable to connect")
_LEASE_ERRORS = ("Failed to acquire lock", "resource busy", "sanlock", "lease", "Lockspace")


def virsh_error(stderr: str, returncode: int, what: str) -> DriverError:
    """The typed error for a failed virsh run, with libvirt's own one-line message."""
    lines = [escaped(line.strip()) for line in stderr.splitlines() if line.strip()]
    message = "; ".join(line[len("error: "):] if line.startswith("error: ") else line for line in lines)
    message = message[:400] or f"exit status {returncode}"
    if returncode == 127 or "command not found" in message or "virsh: not found" in message:
        return ConnectionFailed(f"{what}: virsh is not installed on the host")
    text = f"{what}: {message}"
    if any(marker in message for marker in _CONNECT_ERRORS):
        return ConnectionFailed(text)
    if "Domain not found" in message or "failed to get domain" in message:
        return DomainNotFound(text)
    if "Requested operation is not valid" in message or "already running" in message:
        return OperationInvalid(text)
    if any(marker in message for marker in _LEASE_ERRORS):
        return LeaseConflict(text)
    if "not supported by the connection driver" in message:  # this hypervisor can't (test:// can't wake)
        return NotSupported(text)
    return DriverError(text)

"""Parsers for `sanlock client status`, `sanlock client gets -h 1` and `sanlock client host_status -s LOCKSPACE`."""

from __future__ import annotations

import re

from virttui.records import record

_NUMBER = re.compile(r"-?[0-9]{1,20}")  # ASCII digits, 64-bit at most: "²".isdigit() is true, int("²") fails


def _number(text: str, *, signed: bool = False) -> int | None:
    """An integer field of sanlock's output, or None when it is not one."""
    if not _NUMBER.fullmatch(text) or (text.startswith("-") and not signed):
        return None
    return int(text)


@record
class DaemonStatus:
    """What this host's sanlock daemon holds: lockspaces joined, resources held."""

    lockspaces: dict[str, int]  # name -> this host's host_id, for joined lockspaces
    joining: frozenset[str]  # lockspaces still being added
    resources: dict[str, int]  # "LOCKSPACE:NAME" -> pid holding it


def parse_client_status(text: str) -> DaemonStatus:
    """`s LS:HOST_ID:PATH:OFFSET [ADD|REM]` and `r LS:NAME:PATH:OFFSET:LVER p PID` lines; the rest ignored."""
    lockspaces: dict[str, int] = {}
    joining: set[str] = set()
    resources: dict[str, int] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2:
            continue
        fields = words[1].split(":")
        host_id = _number(fields[1]) if len(fields) >= 2 else None
        if words[0] == "s" and host_id is not None:
            if len(words) > 2 and words[2] in ("ADD", "REM"):
                joining.add(fields[0])
            else:
                lockspaces[fields[0]] = host_id
        elif words[0] == "r" and len(fields) >= 2:
            pid = _number(words[3], signed=True) if len(words) > 3 and words[2] == "p" else None
            resources[f"{fields[0]}:{fields[1]}"] = pid or 0
    return DaemonStatus(lockspaces, frozenset(joining), resources)


def parse_host_status(text: str) -> dict[int, int]:
    """host_id -> delta-lease timestamp, from `N timestamp T` lines."""
    hosts: dict[int, int] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and words[1] == "timestamp":
            host_id, timestamp = _number(words[0]), _number(words[2])
            if host_id is not None and timestamp is not None:
                hosts[host_id] = timestamp
    return hosts


# sanlock's view of a host_id in a lockspace (`gets -h 1`). Only DEAD and FREE hosts hold no leases:
# a FAIL host has stopped renewing but is not yet past host_dead_seconds, so sanlock still refuses
# its leases to anyone; UNKNOWN is a host it has not watched long enough to say.
HOLDING_STATES = frozenset({"LIVE", "FAIL", "UNKNOWN"})


@record
class HostState:
    """One host_id of a lockspace as this host's sanlock daemon sees it."""

    generation: int
    timestamp: int
    state: str  # LIVE, FAIL, DEAD, FREE or UNKNOWN

    @property
    def holding(self) -> bool:
        """Whether leases it owns are still its own (sanlock refuses them to others)."""
        return self.state in HOLDING_STATES


def parse_lockspace_hosts(text: str, lockspace: str) -> tuple[bool, dict[int, HostState] | None]:
    """(joined, host_id -> state) from the `h ID gen G timestamp T STATE` lines under `s LOCKSPACE:...`;
    the states are None when the lockspace is not listed (not joined), its hosts are "not ready"
    (joined moments ago: sanlock has not read the other hosts' delta leases yet), sanlock says
    `hosts error N`, or it lists no host at all (not even this one): nothing is known then."""
    hosts: dict[int, HostState] = {}
    inside = joined = failed = False
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "s" and len(words) > 1:
            inside = words[1].split(":")[0] == lockspace
            joined = joined or inside
        elif inside and words[0] == "hosts":  # "hosts not ready", "hosts error -28"
            failed = True
        elif inside and words[0] == "h" and len(words) >= 7 and words[2] == "gen" and words[4] == "timestamp":
            host_id, generation, timestamp = _number(words[1]), _number(words[3]), _number(words[5])
            if host_id is not None and generation is not None and timestamp is not None:
                hosts[host_id] = HostState(generation, timestamp, words[6])
    return joined, (hosts if joined and hosts and not failed else None)

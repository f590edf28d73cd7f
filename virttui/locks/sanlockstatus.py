"""Parsers for `sanlock client status` and `sanlock client host_status -s LOCKSPACE`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
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
        if words[0] == "s" and len(fields) >= 2 and fields[1].isdigit():
            if len(words) > 2 and words[2] in ("ADD", "REM"):
                joining.add(fields[0])
            else:
                lockspaces[fields[0]] = int(fields[1])
        elif words[0] == "r" and len(fields) >= 2:
            pid = int(words[3]) if len(words) > 3 and words[2] == "p" and words[3].lstrip("-").isdigit() else 0
            resources[f"{fields[0]}:{fields[1]}"] = pid
    return DaemonStatus(lockspaces, frozenset(joining), resources)


def parse_host_status(text: str) -> dict[int, int]:
    """host_id -> delta-lease timestamp, from `N timestamp T` lines."""
    hosts: dict[int, int] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0].isdigit() and words[1] == "timestamp" and words[2].isdigit():
            hosts[int(words[0])] = int(words[2])
    return hosts

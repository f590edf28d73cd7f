"""A domain's snapshots as the virsh driver lists them: each one's XML read under the name the
listing gave; a name that no snapshot answers to is listed, marked unusable.
"""

from __future__ import annotations

from virttui.drivers.model import DomainSnapshot
from virttui.drivers.names import escaped
from virttui.drivers.xmlparse import parse_xml


def listed_snapshots(names: list[str], texts: dict[str, str], current: str, uri: str) -> list[DomainSnapshot]:
    """The snapshots `snapshot-list` named, in its order. texts: `snapshot-dumpxml` of each usable
    name (blank where no snapshot answered to it; a name not in texts is unusable); current: the
    current snapshot's name; uri: the host, as errors name it."""
    snaps: list[DomainSnapshot] = []
    unresolved: list[str] = []  # lines no snapshot answers to: the pieces of a name with a line break
    for name in names:
        text = texts.get(name, "")
        if text.strip():
            if unresolved:
                snaps.append(DomainSnapshot(name="\n".join(unresolved), usable=False))
                unresolved = []
            snaps.append(parse_snapshot(text, name, current, f"{uri}: snapshot {escaped(name)!r}"))
        elif name in texts:
            unresolved.append(name)
        else:
            snaps.append(DomainSnapshot(name=name, usable=False))
    if unresolved:
        snaps.append(DomainSnapshot(name="\n".join(unresolved), usable=False))
    return snaps


def parse_snapshot(text: str, name: str, current: str, what: str) -> DomainSnapshot:
    """A snapshot's XML, under the name the listing gave (the one commands use)."""
    root = parse_xml(text, what)
    def child(tag: str) -> str:
        elem = root.find(tag)
        return (elem.text or "").strip() if elem is not None else ""
    created = child("creationTime")
    return DomainSnapshot(name=name, description=child("description"), state=child("state"),
                          created=int(created) if created.isascii() and created.isdigit() else 0,
                          parent=child("parent/name"), current=name == current)

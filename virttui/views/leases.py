"""The Leases pane's view: every lease file of every lease directory, with its status."""

from __future__ import annotations

import os

from virttui.fleet import Fleet
from virttui.locks.model import LeaseState, LeaseStatus
from virttui.locks.status import STATE_ORDER as LEASE_ORDER
from virttui.records import record
from virttui.views.common import KEY_SEP, Column
from virttui.widgets.cells import Cell, Row

COLUMNS: tuple[Column, ...] = (
    ("state", "State", 8),
    ("disk", "Disk", 16),
    ("owner", "Held by", 16),
    ("name", "Lease file", 32),
    ("detail", "Detail", 70),
)
LEASE_STYLES = {
    LeaseState.HELD: "green",
    LeaseState.FREE: "dim",
    LeaseState.ORPHAN: "yellow",
    LeaseState.MISSING: "bold red",
    LeaseState.CONFLICT: "bold red",
    LeaseState.CORRUPT: "bold magenta",
}
LEASE_AGE_EPOCH = 1e9  # an as_of before 2001 is no wall time (a test's stepped clock): no age shown


@record
class LeasesView:
    """rows is the very object of the previous view while the Fleet's lease rows are unchanged."""

    rows: tuple[Row, ...]
    title: str


class LeasesCache:
    """What leases_view keeps between calls (its owner, the screen, holds one): the Fleet rebuilds
    its lease rows only when something changed, and so does the view."""

    def __init__(self) -> None:
        self.shown: tuple[object, tuple[Row, ...], str, str] | None = None  # (fleet's rows, rows, summary, error)


def leases_view(fleet: Fleet, cache: LeasesCache, now: float) -> LeasesView:
    """The lease rows and a title: how many leases in each state, whether files are still being
    read, how old the oldest pass over them is at `now` (wall time), the first directory's error."""
    statuses = fleet.lease_rows()
    if cache.shown is None or cache.shown[0] is not statuses:
        rows = tuple(lease_row(directory, status) for directory, status in statuses)
        errors = [view.error for views in fleet.lease_dirs().values() for _, view in views if view.error]
        counts: dict[str, int] = {}
        for _, status in statuses:
            counts[status.state.value] = counts.get(status.state.value, 0) + 1
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none"
        directories = len(fleet.lease_dirs())
        if directories > 1:  # two directories' leases for one disk are two leases, not one counted twice
            summary = f"{directories} directories · {summary}"
        cache.shown = (statuses, rows, summary, errors[0] if errors else "")
    _, rows, summary, error = cache.shown
    age = lease_files_age(fleet, now)
    reading = any(not view.complete for views in fleet.lease_dirs().values() for _, view in views)
    return LeasesView(rows, f"Leases · {summary}" + (" · reading lease files…" if reading else "")
                      + (f" · files read {age} s ago" if age else "")
                      + (f" · {error}" if error else ""))


def lease_files_age(fleet: Fleet, now: float) -> int:
    """Seconds since the oldest pass over lease files behind the pane, in steps of 10, once it is
    10 s or more (0 before): what its daemons hold is current, a file's leader record that old."""
    passes = [snap.leases.as_of for uri in fleet.uris if (snap := fleet.snapshot(uri)) is not None
              and snap.leases is not None and snap.leases.as_of > LEASE_AGE_EPOCH]
    if not passes:
        return 0
    age = int(now - min(passes)) // 10 * 10
    return age if age >= 10 else 0


def lease_row(directory: str, status: LeaseStatus) -> Row:
    owner = status.holder or (f"host {status.owner_host_id}" if status.owner_host_id else "-")
    disk = os.path.basename(status.disk) if status.disk else "(no known disk)"
    return (f"{directory}{KEY_SEP}{status.name}", (
        Cell(status.state.value, LEASE_STYLES[status.state],
             sort_key=(LEASE_ORDER[status.state], disk, status.name)),
        Cell(disk),
        Cell(owner),
        Cell(status.name, "dim"),
        Cell(status.detail),
    ))

"""The Disks pane's view: the disks of the domain under the Domains cursor, with their leases."""

from __future__ import annotations

from collections.abc import Callable

from virttui.drivers.model import Disk, Domain
from virttui.fleet import Fleet
from virttui.format import human_bytes
from virttui.locks.model import LeaseStatus
from virttui.locks.naming import sanlock_lease_name
from virttui.records import record
from virttui.views.common import KEY_SEP, Column
from virttui.views.leases import LEASE_STYLES
from virttui.widgets.cells import Cell, Row

COLUMNS: tuple[Column, ...] = (
    ("target", "Dev", 4),
    ("source", "Source", 17),
    ("mode", "Mode", 6),
    ("lstate", "Lease", 8),
    ("size", "Size", 9),
    ("format", "Fmt", 5),
    ("lease", "Lease file", 32),
    ("path", "Full path", 60),
)


@record
class DisksView:
    rows: tuple[Row, ...]
    title: str


def disks_view(fleet: Fleet, selected: tuple[str, Domain] | None) -> DisksView:
    """The disks of `selected` (host uri, domain); none, titled "Disks", without one."""
    if selected is None:
        return DisksView((), "Disks")
    uri, dom = selected
    snap = fleet.snapshot(uri)
    has_leases = snap is not None and snap.leases is not None
    elsewhere = dict(fleet.disks_held_elsewhere(uri, dom))
    name_of = snap.leases.lease_name if snap is not None and snap.leases is not None else sanlock_lease_name
    rows = tuple(disk_row(disk, fleet.lease_status_for(disk.source, uri) if disk.needs_exclusive_lease else None,
                          dom.state.is_active, has_leases, disk.target in elsewhere, name_of, position)
                 for position, disk in enumerate(dom.disks))
    title = f"Disks · {dom.name}"
    if elsewhere:  # the lease is held, but not for this domain: it can't start while that runs
        title += " · in use by " + ", ".join(sorted(set(elsewhere.values())))
    return DisksView(rows, title)


def short_path(path: str, width: int) -> str:
    """Keep the end of a long path, where the file name is: '…ges/web-01.qcow2'."""
    return path if len(path) <= width else "…" + path[-(width - 1):]


def disk_row(disk: Disk, lease: LeaseStatus | None, running: bool, has_leases: bool = True,
             held_elsewhere: bool = False, lease_name_of: Callable[[str], str] = sanlock_lease_name,
             position: int = 0) -> Row:
    """held_elsewhere: another domain holds the disk's lease ("by other", not a green "held");
    lease_name_of: the host's lock manager's name for a disk's lease (md5 for sanlock, sha256 for lockd);
    position: the disk's place in the domain, in the row key, so the pane keeps the domain's order."""
    if not has_leases:  # the host runs no sanlock/lockd lock manager: nothing to show
        lease_name, lease_state, style = "", "-", "dim"
    elif not disk.needs_exclusive_lease:
        lease_name, lease_state, style = "", "-" if not disk.source else "n/a", "dim"
    elif lease is None:
        lease_name = lease_name_of(disk.source)
        lease_state, style = ("missing", "bold red") if running else ("none", "dim")
    elif held_elsewhere:
        lease_name, lease_state, style = lease.name, "by other", "bold yellow"
    else:
        lease_name = lease.name
        lease_state, style = lease.state.value, LEASE_STYLES[lease.state]
    if disk.device != "disk":
        mode = disk.device
    else:
        mode = {"rw": "rw", "ro": "ro", "shareable": "shared"}[disk.mode]
    return (f"{position}{KEY_SEP}{disk.target}", (
        Cell(disk.target),
        Cell(short_path(disk.source, 17) if disk.source else "(empty)"),
        Cell(mode),
        Cell(lease_state, style),
        Cell(human_bytes(disk.capacity) if disk.capacity else "-", sort_key=disk.capacity),
        Cell(disk.format or "-"),
        Cell(lease_name, "dim"),
        Cell(disk.source),
    ))

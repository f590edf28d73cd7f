"""Lease status: the lease directory combined with the disks of every domain sharing it."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable

from virttui.locks.model import LeaseDirSnapshot, LeaseState, LeaseStatus
from virttui.records import record


@record
class DiskUse:
    """One domain's use of one disk path, on one host."""

    host: str  # label of the host
    host_id: int  # the host's sanlock host_id, 0 when unknown
    domain: str
    path: str
    running: bool
    exclusive: bool  # read-write and not shareable: needs the lease
    host_key: str = ""  # what tells hosts apart (the URI); two hosts may share a hostname
    paused: bool = False  # active but holding no leases (libvirt releases them on pause)
    # its state was confirmed by an action's success after the lease views were read: newer than they are
    confirmed: bool = False

    @property
    def host_identity(self) -> str:
        return self.host_key or self.host

    @property
    def released(self) -> bool:
        """Confirmed shut off since the lease views were read: it holds none of its leases now."""
        return self.confirmed and not self.running and not self.paused

    @property
    def taken(self) -> bool:
        """Confirmed running (started) since the lease views were read: libvirt took its leases."""
        return self.confirmed and self.running and self.exclusive


# Problems first, then what cleanup would take, then the healthy held leases.
STATE_ORDER = {
    LeaseState.CONFLICT: 0,
    LeaseState.CORRUPT: 1,
    LeaseState.MISSING: 2,
    LeaseState.ORPHAN: 3,
    LeaseState.FREE: 4,
    LeaseState.HELD: 5,
}


def compute_lease_status(leases: LeaseDirSnapshot, uses: Iterable[DiskUse]) -> list[LeaseStatus]:
    """One row per lease file, plus one per running exclusive disk that has no lease."""
    by_name: dict[str, list[DiskUse]] = defaultdict(list)
    for use in uses:
        by_name[leases.lease_name(use.path)].append(use)
    rows: list[LeaseStatus] = []
    present = set()
    for lease in leases.files:
        present.add(lease.name)
        users = by_name.get(lease.name, [])
        disk = users[0].path if users else ""
        domains = _labels(users)
        running_hosts = {u.host_identity for u in users if u.running and u.exclusive}
        # the daemon holding it says who owns it now; the leader record may be older than that
        owner = lease.daemon_owner or (lease.leader.owner_id if lease.leader and lease.leader.owner_id else None)
        bad_checksum = lease.leader is not None and not lease.leader.checksum_ok and not lease.held
        unread = lease.leader is None and not lease.daemon_owner  # a daemon's lease not read yet is no fault
        held, held_by = _held_as_known(lease.held, owner, users)
        if lease.error or (unread and leases.manager == "sanlock") or bad_checksum:
            # a bad checksum: sanlock refuses the lease (-214), so it is neither free nor removable
            why = lease.error or ("leader record checksum mismatch" if bad_checksum else "")
            rows.append(LeaseStatus(lease.name, lease.path, disk, LeaseState.CORRUPT, None, domains, why))
        elif len(running_hosts) > 1:
            rows.append(LeaseStatus(lease.name, lease.path, disk, LeaseState.CONFLICT, owner, domains,
                                    "running on " + _host_labels(users)))
        elif held:
            rows.append(_held_row(leases, lease.name, lease.path, held_by, users))
        elif not users:
            rows.append(LeaseStatus(lease.name, lease.path, disk, LeaseState.ORPHAN, None, domains,
                                    "no defined domain has this disk"))
        else:
            rows.append(LeaseStatus(lease.name, lease.path, disk, LeaseState.FREE, None, domains))
    if leases.auto_disk_leases and not leases.error:
        rows.extend(_missing(leases, by_name, present))
    return rows


def _held_as_known(held: bool, owner: int | None, users: list[DiskUse]) -> tuple[bool, int | None]:
    """(held, owner host_id) with the domains' confirmed states, newer than the lease views, laid over
    what the views say: a force off released the lease at once, a start took it."""
    if held:
        on_owner = [u for u in users if u.exclusive and (not owner or u.host_id in (0, owner))]
        if any(u.released for u in on_owner) and not any(u.running for u in on_owner):
            return False, None
        return True, owner
    taker = next((u for u in users if u.taken), None)
    return (True, taker.host_id or None) if taker is not None else (False, owner)


def _held_row(leases: LeaseDirSnapshot, name: str, path: str, owner: int | None,
              users: list[DiskUse]) -> LeaseStatus:
    """A held lease's row: its owner, the domain holding it, who else would conflict."""
    holder = [u for u in users if u.running and u.exclusive and (not owner or u.host_id in (0, owner))]
    detail = f"host {owner}" if owner else "held"
    holder_label = f"{holder[0].host}/{holder[0].domain}" if holder else ""
    if holder:
        detail += f", domain {holder[0].domain}"
    if owner in leases.failing_host_ids:  # its lease until sanlock declares it dead
        detail += f"; host {owner} is failing (not renewing)"
    others = sorted({f"{u.host}/{u.domain}" for u in users if not u.running and u.exclusive})
    if others:
        verb = "resuming" if all(u.paused for u in users if not u.running and u.exclusive) else "starting"
        detail += f"; {verb} " + ", ".join(others) + " would conflict"
    disk = users[0].path if users else ""
    return LeaseStatus(name, path, disk, LeaseState.HELD, owner, _labels(users), detail, holder_label)


def _missing(leases: LeaseDirSnapshot, by_name: dict[str, list[DiskUse]], present: set[str]) -> list[LeaseStatus]:
    rows = []
    for name, users in sorted(by_name.items()):
        # with an LVM or SCSI lockspace, virtlockd leases a /dev disk there when it is an LV or has a
        # WWN, which can't be told from here: its lease is not judged missing, rather than misjudged
        running = [u for u in users if u.running and u.exclusive
                   and not (leases.devices_elsewhere and u.path.startswith("/dev/"))]
        if name in present or not running:
            continue
        hosts = {u.host_identity for u in running}
        if len(hosts) == 1 and all(u.taken for u in running):  # just started: its new file not read yet
            rows.append(_held_row(leases, name, os.path.join(leases.directory, name), running[0].host_id or None,
                                  users))
            continue
        state = LeaseState.CONFLICT if len(hosts) > 1 else LeaseState.MISSING
        detail = "running on " + _host_labels(running) if len(hosts) > 1 else "running disk has no lease file"
        rows.append(LeaseStatus(name, os.path.join(leases.directory, name), running[0].path, state, None,
                                _labels(users), detail))
    return rows


def _host_labels(users: list[DiskUse]) -> str:
    """The hosts running a disk, by the names the operator knows them by."""
    return ", ".join(sorted({u.host for u in users if u.running and u.exclusive}))


def _labels(users: list[DiskUse]) -> tuple[str, ...]:
    return tuple(sorted({f"{u.host}/{u.domain}" for u in users}))

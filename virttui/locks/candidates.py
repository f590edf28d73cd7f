"""Which files a lease cleanup may try to remove: the checks sanlock makes, asked beforehand.

A real cleanup asks sanlock itself (it refuses a lease of another lockspace,
of another resource, or with a bad checksum); the embedded store and a dry run
have no sanlock to ask, so they refuse what it would refuse, for the same reasons.
"""

from __future__ import annotations

from virttui.locks.model import LeaderRecord
from virttui.locks.naming import is_sanlock_lease_name

SECTOR = 512  # a lease's leader record fills its first sector


def name_refusal(name: str) -> str:
    """Why a file of this name is never removed ('' when it may be): libvirt names leases by md5."""
    return "" if is_sanlock_lease_name(name) else "not a lease file name"


def refusal(name: str, leader: LeaderRecord | None, lockspace: str, size: int) -> str:
    """Why this file is not a lease cleanup may remove, or '' when it may try to take its lease."""
    if why := name_refusal(name):
        return why
    if leader is None:
        return "not a lease"
    if size < SECTOR:
        return "not a lease (shorter than one sector)"
    if not leader.checksum_ok:
        return "lease is corrupt (bad checksum)"
    if leader.space_name != lockspace:
        return "lease belongs to another lockspace"
    if leader.resource_name != name:
        return "lease names another resource"
    return ""

"""Data of the lock-manager module: configuration, on-disk records, states."""

from __future__ import annotations

from dataclasses import field
from enum import Enum

from virttui.records import record

LOCKSPACE_NAME = "__LIBVIRT__DISKS__"
MAX_HOST_ID = 2000  # sanlock's default (and libvirt's) max_hosts of a lockspace: host_ids 1..2000
DEFAULT_LEASE_DIR = "/var/lib/libvirt/sanlock"


@record
class LockConfig:
    """A host's libvirt lock settings (qemu.conf + qemu-sanlock.conf + qemu-lockd.conf)."""

    manager: str = "nop"  # "sanlock", "lockd" or "nop"
    auto_disk_leases: bool = False  # the manager's own setting: qemu-sanlock.conf's, or qemu-lockd.conf's
    disk_lease_dir: str = DEFAULT_LEASE_DIR
    host_id: int = 0
    require_lease_for_disks: bool = True
    io_timeout: int = 0
    file_lockspace_dir: str = ""
    # lockd's lvm_lockspace_dir / scsi_lockspace_dir: logical volumes and SCSI disks are then leased
    # there by LV UUID or WWN, not as sha256-named files in file_lockspace_dir
    device_lockspaces: bool = False


@record
class LeaderRecord:
    """The first sector of a sanlock lease: who owns it, since when."""

    magic: int
    version: int
    owner_id: int
    owner_generation: int
    lver: int
    space_name: str
    resource_name: str
    timestamp: int
    io_timeout: int
    checksum_ok: bool
    sector_size: int = 512

    @property
    def is_free(self) -> bool:
        """sanlock writes timestamp 0 (LEASE_FREE) when a lease is released."""
        return self.timestamp == 0


@record
class LeaseFile:
    """One file of the lease directory, as read in one poll."""

    name: str
    path: str
    size: int = 0
    leader: LeaderRecord | None = None
    error: str = ""  # why the file could not be read as a lease
    held: bool = False  # the lease is owned right now (kernel lock, or a live sanlock owner)
    # host_id whose lock-manager daemon says it holds this lease right now (0: none said so); such a
    # lease is shown held before its file was read, and its leader record's owner never overrides it
    daemon_owner: int = 0


@record
class LeaseDirSnapshot:
    """The lease directory as one host sees it."""

    directory: str
    host_id: int
    auto_disk_leases: bool = True
    lockspace: str = LOCKSPACE_NAME
    files: tuple[LeaseFile, ...] = ()
    error: str = ""  # the directory itself could not be read
    devices_elsewhere: bool = False  # lockd: /dev disks are leased in LVM/SCSI lockspaces, not here
    live_host_ids: tuple[int, ...] = ()  # holding their leases: LIVE, or FAIL (renewals failing, not yet dead)
    failing_host_ids: tuple[int, ...] = ()  # FAIL: stopped renewing; their leases stay theirs until DEAD
    # The owner name in the lockspace file's first delta lease (host_id 1's): two views of one path
    # that read different names are two directories (two clusters on libvirt's default path).
    lockspace_identity: str = ""
    manager: str = "sanlock"  # "lockd": sha256-named files held by virtlockd's fcntl locks, no leader record
    # What this host's own daemon holds (sanlock `client status`, or the kernel's lock table for an
    # embedded host), read without storage I/O; None when the daemon did not answer. Merged views
    # take it as the truth for leases whose owner is this host.
    daemon_held: frozenset[str] | None = None
    # False: a view that only reports its daemon (another host reads this directory's files); its
    # `files` are the leases it holds, nothing more
    complete: bool = True
    # time.time() of the last pass over the files (0: unknown); left out of equality, so a pass that
    # found nothing new rebuilds nothing downstream
    as_of: float = field(default=0.0, compare=False)

    def lease_name(self, disk_path: str) -> str:
        """The file name this directory's lock manager gives a disk's lease."""
        from virttui.locks.naming import lockd_lease_name, sanlock_lease_name

        return lockd_lease_name(disk_path) if self.manager == "lockd" else sanlock_lease_name(disk_path)


class LeaseState(str, Enum):
    """What the Leases pane and `leases status` say of a lease."""

    HELD = "held"
    FREE = "free"
    ORPHAN = "orphan"
    MISSING = "missing"
    CONFLICT = "conflict"
    CORRUPT = "corrupt"


@record
class LeaseStatus:
    """One row of lease status: a file, or a missing lease of a running disk."""

    name: str
    path: str
    disk: str  # the disk path whose md5 is `name`, "" when no known disk matches
    state: LeaseState
    owner_host_id: int | None = None
    domains: tuple[str, ...] = ()  # "host/domain" of every domain with that disk
    detail: str = ""
    holder: str = ""  # "host/domain" running with this lease, when known


@record
class CleanupOutcome:
    """What cleanup did with one file."""

    name: str
    path: str
    removed: bool
    reason: str = ""  # why it was kept


@record
class CleanupReport:
    """All outcomes of one cleanup run, in directory order."""

    lockspace: str
    outcomes: tuple[CleanupOutcome, ...] = field(default=())

    @property
    def removed(self) -> tuple[CleanupOutcome, ...]:
        return tuple(o for o in self.outcomes if o.removed)

    @property
    def kept(self) -> tuple[CleanupOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.removed)

"""Plain, immutable data describing hosts, domains and disks.

Snapshots are frozen so the poll worker can hand them to the UI thread
without copies or locks: whatever the UI holds can never change under it.
"""

from __future__ import annotations

from enum import Enum

from virttui.locks.model import LeaseDirSnapshot
from virttui.records import record


class DomainState(str, Enum):
    """libvirt's domain states, spelled as virsh prints them."""

    NOSTATE = "no state"
    RUNNING = "running"
    IDLE = "idle"
    PAUSED = "paused"
    IN_SHUTDOWN = "in shutdown"
    SHUT_OFF = "shut off"
    CRASHED = "crashed"
    PMSUSPENDED = "pmsuspended"

    @classmethod
    def from_libvirt_number(cls, number: int) -> DomainState:
        """Map virDomainState numbers (as in domstats and test:runstate)."""
        return _BY_NUMBER.get(number, cls.NOSTATE)

    @property
    def is_active(self) -> bool:
        """True while the domain has a process; a crashed, preserved guest still has one."""
        return self not in (DomainState.SHUT_OFF, DomainState.NOSTATE)


# libvirt's state reasons (virDomain{Running,Paused,Shutoff,Crashed}Reason), worded as `virsh domstate
# --reason` words them; only those an operator must notice: a guest paused by a full disk looks like
# one paused by hand, and `p` would resume it straight back into the I/O error.
_NOTABLE_REASONS: dict[str, dict[int, str]] = {
    "running": {9: "crashed", 10: "post-copy", 11: "post-copy failed"},
    "paused": {2: "migrating", 3: "saving", 4: "dumping", 5: "I/O error", 6: "watchdog", 9: "creating snapshot",
               10: "crashed", 12: "post-copy", 13: "post-copy failed"},
    "shut off": {3: "crashed", 4: "migrated", 5: "saved", 6: "failed"},
    "crashed": {1: "panicked"},
}


def notable_reason(state: DomainState, number: int | None) -> str:
    """Why the domain is in its state, when that matters ("I/O error"); "" for the ordinary ones."""
    return _NOTABLE_REASONS.get(state.value, {}).get(number, "") if number is not None else ""


_BY_NUMBER = {
    0: DomainState.NOSTATE,
    1: DomainState.RUNNING,
    2: DomainState.IDLE,
    3: DomainState.PAUSED,
    4: DomainState.IN_SHUTDOWN,
    5: DomainState.SHUT_OFF,
    6: DomainState.CRASHED,
    7: DomainState.PMSUSPENDED,
}


class ConnectionState(str, Enum):
    """Where a host's connection stands, as the Hosts pane shows it."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    ERROR = "error"
    DISCONNECTED = "disconnected"


# Slotted: at 2000 domains every poll makes thousands of these, and objects without a __dict__
# cost less to make and to walk.
LEASED_DISK_KINDS = frozenset({"file", "block", "dir"})  # libvirt's virDomainLockManagerAddImage


@record(slots=True)
class Disk:
    """One disk device of a domain, from its XML."""

    target: str
    bus: str = ""
    device: str = "disk"
    source: str = ""
    format: str = ""
    readonly: bool = False
    shareable: bool = False
    capacity: int = 0  # bytes
    allocation: int = 0  # bytes
    kind: str = "file"  # the <disk type=...>: file, block, dir, network, volume...

    @property
    def mode(self) -> str:
        """rw, ro or shareable, as the Disks pane shows it."""
        if self.readonly:
            return "ro"
        if self.shareable:
            return "shareable"
        return "rw"

    @property
    def has_lease_path(self) -> bool:
        """Whether libvirt's lock managers name a lease after this disk's source: only local storage
        (file, block, dir; any device: a writable floppy or lun too), never a network disk, and a
        volume's only by the path its pool resolves it to at start, which its XML doesn't show."""
        return bool(self.source) and self.kind in LEASED_DISK_KINDS

    @property
    def needs_exclusive_lease(self) -> bool:
        """libvirt's auto disk leases: one per writable, unshared disk on local storage."""
        return self.has_lease_path and not self.readonly and not self.shareable


@record(slots=True)
class DiskIO:
    """Cumulative I/O counters of one disk."""

    rd_bytes: int = 0
    wr_bytes: int = 0


@record(slots=True)
class Domain:
    """A guest as seen in one poll."""

    uuid: str
    name: str
    state: DomainState
    vcpus: int
    memory_kib: int
    max_memory_kib: int
    autostart: bool = False
    persistent: bool = True
    cpu_time_ns: int = 0
    disks: tuple[Disk, ...] = ()
    disk_io: tuple[tuple[str, DiskIO], ...] = ()  # (target, counters)
    id: int | None = None
    net_rx_bytes: int = 0  # all interfaces, cumulative
    net_tx_bytes: int = 0
    memory_used_kib: int | None = None  # from the guest's balloon stats; None when it reports none
    reason: str = ""  # why it is in its state, when notable (notable_reason): "I/O error"

    @property
    def state_text(self) -> str:
        """"paused (I/O error)", or just "paused"."""
        return f"{self.state.value} ({self.reason})" if self.reason else self.state.value

    def io_for(self, target: str) -> DiskIO:
        """Counters of one disk target, zero when unknown."""
        for name, counters in self.disk_io:
            if name == target:
                return counters
        return DiskIO()

    @property
    def total_io(self) -> DiskIO:
        """Sum of all disks' counters, for the detail sparkline."""
        return DiskIO(*self.io_totals())

    def io_totals(self) -> tuple[int, int]:
        """(bytes read, bytes written) over all disks: total_io without building a DiskIO (the
        fleet sums these for every domain of every poll)."""
        rd = wr = 0
        for _, counters in self.disk_io:
            rd += counters.rd_bytes
            wr += counters.wr_bytes
        return rd, wr


@record(slots=True)
class Host:
    """A hypervisor host as seen in one poll."""

    uri: str
    hostname: str = ""
    hypervisor: str = ""
    hypervisor_version: str = ""
    cpus: int = 0
    memory_kib: int = 0
    state: ConnectionState = ConnectionState.DISCONNECTED
    last_error: str = ""
    poll_latency_ms: float | None = None
    retry_in_s: float | None = None
    warnings: tuple[str, ...] = ()  # things the operator should know that are not errors
    display_name: str = ""  # set by the Fleet: the config's name for it, or its label made unique

    @property
    def label(self) -> str:
        """Short name for tables: the name the Fleet gave it (configured, or made unique), else its own."""
        return self.display_name or self.own_label

    @property
    def own_label(self) -> str:
        """The hostname, else the URI's host part, else the URI."""
        if self.hostname:
            return self.hostname
        _, sep, rest = self.uri.partition("://")
        host = rest.split("/", 1)[0].rpartition("@")[2] if sep else ""
        return host or self.shown_uri

    @property
    def state_words(self) -> str:
        """The connection state as a sentence says it: "hv1 is in error", "hv1 is connecting"."""
        return "in error" if self.state is ConnectionState.ERROR else self.state.value

    @property
    def shown_uri(self) -> str:
        """The URI as it may be shown or printed: a password in it (refused anyway) masked."""
        from virttui.drivers.uri import redacted

        return str(redacted(self.uri))


@record(slots=True)
class HostSnapshot:
    """One consistent view of a host and its domains, taken by one poll."""

    host: Host
    domains: tuple[Domain, ...] = ()
    taken_at: float = 0.0  # the driver clock's seconds, for rate deltas
    leases: LeaseDirSnapshot | None = None  # the host's lease directory, if it has one

    def domain(self, uuid: str) -> Domain | None:
        """The domain with this UUID, if the host has it."""
        for dom in self.domains:
            if dom.uuid == uuid:
                return dom
        return None


@record(slots=True)
class DomainSnapshot:
    """One snapshot of a domain, as `virsh snapshot-dumpxml` describes it."""

    name: str
    description: str = ""
    state: str = ""  # the domain's state when it was taken: running, shutoff…
    created: int = 0  # seconds since the epoch
    parent: str = ""
    current: bool = False
    usable: bool = True  # False: the host gave a name no command may carry (shown escaped, never acted on)

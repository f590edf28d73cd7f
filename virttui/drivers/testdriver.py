"""The embedded hypervisor behind test:/// URIs.

State lives in this process for the session. Time is read from an injectable
clock and applied lazily on every call, so tests can step it and snapshots
are reproducible: counters grow and graceful shutdowns finish as time passes.
Starting a domain takes real auto disk leases through virttui.locks.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import field, replace

from lxml import etree

from virttui import digests
from virttui.drivers.base import Action, Driver
from virttui.drivers.errors import ConnectionFailed, DomainNotFound, DriverError, LeaseConflict, OperationInvalid
from virttui.drivers.model import (
    ConnectionState,
    Disk,
    DiskIO,
    Domain,
    DomainSnapshot,
    DomainState,
    Host,
    HostSnapshot,
)
from virttui.drivers.nodexml import NodeDescription, NodeDomain, load_node
from virttui.drivers.xmlparse import parse_xml
from virttui.locks.embedded import EmbeddedLeaseStore, LeaseDirError
from virttui.locks.readers import DEFAULT_SLOW_INTERVAL
from virttui.records import record

SHUTDOWN_SECONDS = 3.0  # how long a guest stays "in shutdown" after a graceful request
_RUNNING_STATES = (DomainState.RUNNING, DomainState.IDLE)


def _not_valid(what: str) -> OperationInvalid:
    return OperationInvalid(f"Requested operation is not valid: {what}")


@record(frozen=False)
class _Guest:
    """Mutable run-time state of one embedded domain; only the driver touches it."""

    node: NodeDomain
    state: DomainState
    load: float  # mean share of its vCPUs it keeps busy while running
    io_rate: float  # mean bytes per second per disk while running
    phase: float  # where in its daily-ish cycle the guest's load wave starts
    cpu_time_ns: float = 0.0
    io: dict[str, list[float]] = field(default_factory=dict)  # target -> [rd, wr], keys in sorted order
    shutdown_at: float | None = None
    dom_id: int | None = None
    net: list[float] = field(default_factory=lambda: [0.0, 0.0])  # rx, tx bytes
    autostart: bool = False
    persistent: bool = True
    snapshots: list[DomainSnapshot] = field(default_factory=list)
    memory_stats_period: int = 0

    def to_domain(self) -> Domain:
        d = self.node.definition
        return Domain(
            uuid=d.uuid,
            name=d.name,
            state=self.state,
            vcpus=d.vcpus,
            memory_kib=d.memory_kib,
            max_memory_kib=d.max_memory_kib,
            autostart=self.autostart,
            persistent=self.persistent,
            cpu_time_ns=int(self.cpu_time_ns),
            disks=d.disks,
            disk_io=tuple([(t, DiskIO(int(v[0]), int(v[1]))) for t, v in self.io.items()]),  # sorted: see io
            id=self.dom_id,
            net_rx_bytes=int(self.net[0]),
            net_tx_bytes=int(self.net[1]),
            memory_used_kib=int(d.memory_kib * self.load) if self.state.is_active and self.load > 0.2 else None,
        )


def _stable_fraction(text: str, low: float, high: float) -> float:
    digest = digests.sha1(text.encode()).digest()
    return low + (high - low) * digest[0] / 255


WAVE_PERIOD = 40.0  # seconds; slow enough to read, fast enough to see in a sparkline


def _wave_integral(start: float, end: float, phase: float) -> float:
    """∫ (1 + 0.6·sin(2πt/P + phase)) dt over [start, end]: load that swells and ebbs.

    Integrated exactly, so counters do not depend on how often anyone polls.
    """
    if end <= start:
        return 0.0
    omega = 2 * math.pi / WAVE_PERIOD
    return (end - start) + 0.6 / omega * (math.cos(omega * start + phase) - math.cos(omega * end + phase))


class TestDriver(Driver):
    """An in-process libvirt test host, loaded from a node XML file."""

    __test__ = False  # not a pytest test class, despite the name
    polls_in_process = True

    def __init__(
        self,
        uri: str,
        node_path: str,
        *,
        lease_dir: str | None = None,
        host_id: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        lease_slow_interval: float = DEFAULT_SLOW_INTERVAL,
    ) -> None:
        self.uri = uri
        self.node_path = node_path
        self._lease_dir = lease_dir
        self._host_id_override = host_id
        self._clock = clock
        self._lock = threading.RLock()
        self._node: NodeDescription | None = None
        self._guests: dict[str, _Guest] = {}
        self._leases: EmbeddedLeaseStore | None = None
        # seconds between passes over the shared lease files (another process's lease shows within it)
        self.lease_slow_interval = lease_slow_interval
        self._last_time = 0.0
        self._next_id = 1
        self.startup_warnings: list[str] = []
        self.wall_clock: Callable[[], float] = time.time  # dates shown to people (snapshots), not rates

    # -- connection --------------------------------------------------------
    @property
    def host_id(self) -> int:
        if self._host_id_override is not None:
            return self._host_id_override
        return self._node.host_id if self._node else 1

    def connect(self) -> None:
        with self._lock:
            if self._node is not None:
                return
            node = load_node(self.node_path)
            self._node = node
            self._last_time = self._clock()
            if self._lease_dir:
                store = EmbeddedLeaseStore(self._lease_dir, self.host_id, host_name=node.hostname, clock=time.time,
                                           slow_interval=self.lease_slow_interval)
                try:
                    store.join_lockspace()
                except LeaseDirError as exc:
                    self._node = None
                    raise ConnectionFailed(f"{self.uri}: {exc.strerror}") from None
                self._leases = store
            for item in node.domains:
                self._guests[item.definition.uuid] = self._new_guest(item)

    def _new_guest(self, item: NodeDomain) -> _Guest:
        name = item.definition.name
        guest = _Guest(
            node=item,
            state=DomainState.SHUT_OFF,
            load=_stable_fraction(name, 0.03, 0.7),
            io_rate=_stable_fraction(name[::-1], 2e4, 3e6),
            phase=_stable_fraction(name + "phase", 0.0, 2 * math.pi),
            io={target: [0.0, 0.0] for target in sorted(disk.target for disk in item.definition.disks)},
            autostart=item.autostart,
            persistent=item.persistent,
        )
        if item.state.is_active:
            try:
                self._take_leases(item.definition.disks)
                guest.state = item.state
                guest.dom_id = self._allocate_id()
            except LeaseConflict as exc:
                self.startup_warnings.append(f"{name} left shut off: {exc}")
        else:
            guest.state = item.state
        return guest

    def close(self) -> None:
        with self._lock:
            if self._leases is not None:
                self._leases.release_all()
                self._leases.leave_lockspace()
                self._leases.close()  # another host of this process reads the shared files from now on
                self._leases = None
            self._node = None
            self._guests.clear()
            self.startup_warnings.clear()  # the next connect finds them afresh, not twice

    def lease_manager(self) -> EmbeddedLeaseStore | None:
        return self._leases

    # -- time --------------------------------------------------------------
    def _advance(self) -> float:
        now = self._clock()
        start = self._last_time
        self._last_time = now
        for guest in list(self._guests.values()):  # a transient guest that stops leaves the dict
            if guest.state in _RUNNING_STATES or guest.state is DomainState.IN_SHUTDOWN:
                busy = _wave_integral(start, now, guest.phase)
                guest.cpu_time_ns += busy * 1e9 * guest.node.definition.vcpus * guest.load
                for index, counters in enumerate(guest.io.values()):
                    counters[0] += busy * guest.io_rate / (index + 1)
                    counters[1] += busy * guest.io_rate * 0.4 / (index + 1)
                guest.net[0] += busy * guest.io_rate * 0.3
                guest.net[1] += busy * guest.io_rate * 0.2
            if guest.state is DomainState.IN_SHUTDOWN and guest.shutdown_at is not None and now >= guest.shutdown_at:
                self._stop(guest)
        return now

    # -- reading -----------------------------------------------------------
    def _require_node(self) -> NodeDescription:
        if self._node is None:
            raise ConnectionFailed(f"{self.uri}: not connected")
        return self._node

    def poll(self) -> HostSnapshot:
        with self._lock:
            started = self._clock()
            node = self._require_node()
            now = self._advance()
            domains = tuple(sorted((g.to_domain() for g in self._guests.values()), key=lambda d: d.name))
            leases = self._leases.poll_snapshot() if self._leases is not None else None
            host = Host(
                uri=self.uri,
                hostname=node.hostname,
                hypervisor="Test",
                hypervisor_version="9.0.0",
                cpus=node.cpus,
                memory_kib=node.memory_kib,
                state=ConnectionState.CONNECTED,
                poll_latency_ms=round((self._clock() - started) * 1000, 1),
                warnings=tuple(self.startup_warnings),
            )
            return HostSnapshot(host=host, domains=domains, taken_at=now, leases=leases)

    def domain_xml(self, uuid: str) -> str:
        with self._lock:
            self._require_node()
            guest = self._guest(uuid)
            root = parse_xml(guest.node.xml, f"domain {guest.node.definition.name}")
            if guest.dom_id is not None:
                root.set("id", str(guest.dom_id))
            elif "id" in root.attrib:
                del root.attrib["id"]
            etree.indent(root, space="  ")
            return etree.tostring(root, encoding="unicode") + "\n"

    def _guest(self, uuid: str) -> _Guest:
        guest = self._guests.get(uuid)
        if guest is None:
            raise DomainNotFound(f"Domain not found: no domain with matching uuid '{uuid}' on {self.uri}")
        return guest

    # -- actions -----------------------------------------------------------
    def perform(self, uuid: str, action: Action) -> None:
        with self._lock:
            self._require_node()
            now = self._advance()
            guest = self._guest(uuid)
            handler = {
                Action.START: self._start,
                Action.SHUTDOWN: self._shutdown,
                Action.REBOOT: self._reboot,
                Action.DESTROY: self._destroy,
                Action.SUSPEND: self._suspend,
                Action.RESUME: self._resume,
            }[action]
            handler(guest, now)

    def _start(self, guest: _Guest, now: float) -> None:
        if guest.state.is_active:
            raise _not_valid("domain is already running")
        self._take_leases(guest.node.definition.disks)
        guest.state = DomainState.RUNNING
        guest.shutdown_at = None
        guest.dom_id = self._allocate_id()

    def _shutdown(self, guest: _Guest, now: float) -> None:
        if guest.state is DomainState.IN_SHUTDOWN:
            return  # a second request is accepted, as libvirt does
        if guest.state not in _RUNNING_STATES:
            raise _not_valid("domain is not running")
        guest.state = DomainState.IN_SHUTDOWN
        guest.shutdown_at = now + SHUTDOWN_SECONDS

    def _reboot(self, guest: _Guest, now: float) -> None:
        if guest.state not in _RUNNING_STATES:
            raise _not_valid("domain is not running")
        guest.state = DomainState.RUNNING

    def _destroy(self, guest: _Guest, now: float) -> None:
        if not guest.state.is_active:
            raise _not_valid("domain is not running")
        self._stop(guest)

    def _suspend(self, guest: _Guest, now: float) -> None:
        if guest.state is DomainState.PAUSED:
            raise _not_valid("domain is already paused")
        if guest.state not in _RUNNING_STATES:
            raise _not_valid("domain is not running")
        guest.state = DomainState.PAUSED

    def _resume(self, guest: _Guest, now: float) -> None:
        if guest.state is not DomainState.PAUSED:
            raise _not_valid("domain is not paused")
        guest.state = DomainState.RUNNING

    def pm_wakeup(self, uuid: str) -> None:
        with self._lock:
            self._require_node()
            self._advance()
            guest = self._guest(uuid)
            if guest.state is not DomainState.PMSUSPENDED:
                raise _not_valid("domain is not suspended")
            guest.state = DomainState.RUNNING

    # -- operator essentials ---------------------------------------------------
    def set_autostart(self, uuid: str, enabled: bool) -> None:
        with self._lock:
            self._require_node()
            guest = self._guest(uuid)
            if not guest.persistent:
                raise _not_valid("cannot set autostart for transient domain")
            guest.autostart = enabled

    def undefine(self, uuid: str, *, remove_storage: bool = False) -> None:
        """As libvirt: a running domain becomes transient and goes when it stops. Storage is not ours to
        delete here (the demo's disk paths are not real files), so remove_storage changes nothing."""
        with self._lock:
            self._require_node()
            guest = self._guest(uuid)
            if not guest.persistent:
                raise _not_valid("cannot undefine transient domain")
            if guest.state.is_active:
                guest.persistent = False
                guest.autostart = False
            else:
                del self._guests[uuid]

    def snapshots(self, uuid: str) -> list[DomainSnapshot]:
        with self._lock:
            self._require_node()
            return list(self._guest(uuid).snapshots)

    def create_snapshot(self, uuid: str, name: str, description: str = "") -> None:
        with self._lock:
            self._require_node()
            self._advance()
            guest = self._guest(uuid)
            if not name or any(s.name == name for s in guest.snapshots):
                raise _not_valid(f"snapshot {name!r} already exists" if name else "a snapshot needs a name")
            current = next((s.name for s in guest.snapshots if s.current), "")
            state = "shutoff" if guest.state is DomainState.SHUT_OFF else guest.state.value
            guest.snapshots = [replace(s, current=False) for s in guest.snapshots]
            guest.snapshots.append(DomainSnapshot(name, description, state, int(self.wall_clock()), current, True))

    def revert_snapshot(self, uuid: str, name: str) -> None:
        with self._lock:
            self._require_node()
            now = self._advance()
            guest = self._guest(uuid)
            snap = next((s for s in guest.snapshots if s.name == name), None)
            if snap is None:
                raise DomainNotFound(f"Domain snapshot not found: no snapshot with matching name '{name}'")
            # As libvirt: the guest comes back in the snapshot's state, paused included.
            want_active = snap.state in ("running", "idle", "paused")
            if want_active and not guest.state.is_active:
                self._start(guest, now)
            elif not want_active and guest.state.is_active:
                self._stop(guest)
            if snap.state == "paused" and guest.state in _RUNNING_STATES:
                guest.state = DomainState.PAUSED
            elif snap.state in ("running", "idle") and guest.state is DomainState.PAUSED:
                guest.state = DomainState.RUNNING
            guest.snapshots = [replace(s, current=s.name == name) for s in guest.snapshots]

    def delete_snapshot(self, uuid: str, name: str) -> None:
        with self._lock:
            self._require_node()
            guest = self._guest(uuid)
            if not any(s.name == name for s in guest.snapshots):
                raise DomainNotFound(f"Domain snapshot not found: no snapshot with matching name '{name}'")
            guest.snapshots = [s for s in guest.snapshots if s.name != name]

    def set_memory_stats_period(self, uuid: str, seconds: int) -> None:
        with self._lock:
            self._require_node()
            guest = self._guest(uuid)
            if not guest.state.is_active:
                raise _not_valid("domain is not running")
            guest.memory_stats_period = seconds

    def _stop(self, guest: _Guest) -> None:
        if not guest.persistent:  # an undefined domain that was still running: gone once stopped
            self._guests.pop(guest.node.definition.uuid, None)
        guest.state = DomainState.SHUT_OFF
        guest.shutdown_at = None
        guest.dom_id = None
        if self._leases is not None:
            for disk in guest.node.definition.disks:
                if disk.needs_exclusive_lease:
                    self._leases.release(disk.source)

    def _take_leases(self, disks: tuple[Disk, ...]) -> None:
        if self._leases is None:
            return
        taken: list[str] = []
        try:
            for disk in disks:
                if disk.needs_exclusive_lease:
                    self._leases.acquire(disk.source)
                    taken.append(disk.source)
        except DriverError:
            for path in taken:
                self._leases.release(path)
            raise

    def _allocate_id(self) -> int:
        dom_id = self._next_id
        self._next_id += 1
        return dom_id

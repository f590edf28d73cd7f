"""What the console knows about all hosts: latest snapshots, rates and lease status.

Pure data and arithmetic, no Textual: the UI asks it for rows; tests and the
CLI can use it directly. Rates come from deltas between two snapshots over
the interval the driver measured, as virt-manager's stats manager does.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import field, replace

from virttui.drivers.model import ConnectionState, Domain, DomainState, Host, HostSnapshot
from virttui.locks.model import LeaseDirSnapshot, LeaseState, LeaseStatus
from virttui.locks.naming import lockd_lease_name, sanlock_lease_name
from virttui.locks.sharing import merge_views, sharing_groups
from virttui.locks.status import DiskUse, compute_lease_status
from virttui.records import record

HISTORY = 60  # samples kept per domain for sparklines


@record(slots=True)
class DomainRow:
    """One domain with its host and its rates, ready for display."""

    host_uri: str
    host_label: str
    domain: Domain
    cpu_percent: float | None
    read_bps: float | None
    write_bps: float | None


@record(frozen=False)
class _History:
    cpu: deque = field(default_factory=lambda: deque(maxlen=HISTORY))
    io: deque = field(default_factory=lambda: deque(maxlen=HISTORY))


@record(frozen=False)
class _HostEntry:
    host: Host
    snapshot: HostSnapshot | None = None
    rates: dict[str, tuple[float | None, float | None, float | None]] = field(default_factory=dict)
    # uuid -> (domain, its total disk bytes read, written) in `snapshot`, for the next apply's deltas
    by_uuid: dict[str, tuple[Domain, int, int]] = field(default_factory=dict)
    lease_inputs: tuple = ()  # what lease status took from `snapshot` (see _lease_inputs)
    # UUIDs whose state set_domain_state laid over `snapshot`: newer than its lease view, so lease
    # status follows them (a force off frees, a start takes) until the next poll
    confirmed: set[str] = field(default_factory=set)


def _lease_inputs(snap: HostSnapshot) -> tuple:
    """What lease status takes from a host's snapshot: its lease view (the same object while its
    driver saw no change) and which disks its domains use, in which state. A host without leases
    gives none of its disks to lease status: nothing to compare then."""
    if snap.leases is None:
        return (None,)
    return (snap.leases, tuple([(dom.name, dom.state, tuple([(disk.source, disk.readonly, disk.shareable)
                                                             for disk in dom.disks if disk.has_lease_path]))
                                for dom in snap.domains]))


def _by_uuid(snap: HostSnapshot) -> dict[str, tuple[Domain, int, int]]:
    found: dict[str, tuple[Domain, int, int]] = {}
    for dom in snap.domains:
        if dom.uuid not in found:  # the first one, as HostSnapshot.domain() finds it
            found[dom.uuid] = (dom, *dom.io_totals())
    return found


def cpu_percent(prev: Domain, cur: Domain, seconds: float, host_cpus: int) -> float | None:
    """Share of the host's CPUs used between two samples, clamped to 0–100."""
    if seconds <= 0 or host_cpus <= 0 or not cur.state.is_active:
        return None
    used = (cur.cpu_time_ns - prev.cpu_time_ns) / (seconds * 1e9 * host_cpus) * 100
    return max(0.0, min(100.0, used))


class Fleet:
    """Latest state of every host, in the order they were configured."""

    def __init__(self, uris: list[str]) -> None:
        self._hosts: dict[str, _HostEntry] = {
            uri: _HostEntry(Host(uri=uri, state=ConnectionState.CONNECTING)) for uri in uris
        }
        self._history: dict[str, dict[str, _History]] = {}  # host uri -> uuid -> samples
        self._lease_cache: _LeaseView | None = None
        self._counts: dict[str, tuple[HostSnapshot, tuple[int, int]]] = {}
        self.names: dict[str, str] = {}  # host uri -> the name the config gives it

    @property
    def uris(self) -> list[str]:
        return list(self._hosts)

    def host(self, uri: str) -> Host:
        """The host's latest state; a host removed meanwhile (a late message) reads as disconnected."""
        entry = self._hosts.get(uri)
        return entry.host if entry is not None else Host(uri=uri, state=ConnectionState.DISCONNECTED)

    def hosts(self) -> list[Host]:
        return [entry.host for entry in self._hosts.values()]

    def snapshot(self, uri: str) -> HostSnapshot | None:
        entry = self._hosts.get(uri)
        return entry.snapshot if entry is not None else None

    def apply(self, snap: HostSnapshot) -> None:
        """Take a new poll result, computing rates against the previous one."""
        entry = self._hosts.setdefault(snap.host.uri, _HostEntry(snap.host))
        named = self._named(snap.host, entry.host)
        if named is not snap.host:
            snap = replace(snap, host=named)
        prev = entry.snapshot
        rates: dict[str, tuple[float | None, float | None, float | None]] = {}
        seconds = snap.taken_at - prev.taken_at if prev is not None else 0.0
        # The previous snapshot by UUID (not prev.domain() per domain, a scan) with its disk
        # totals kept from the last apply, so total_io is summed once per domain: this runs on the
        # UI thread for every poll.
        earlier = {} if prev is None else entry.by_uuid if entry.by_uuid else _by_uuid(prev)
        current = _by_uuid(snap)
        history = self._history.setdefault(snap.host.uri, {})
        cpus = snap.host.cpus
        for dom in snap.domains:
            uuid = dom.uuid
            found = earlier.get(uuid)
            if found is None or seconds <= 0:
                rates[uuid] = (None, None, None)
                continue
            before, then_rd, then_wr = found
            cpu = cpu_percent(before, dom, seconds, cpus)
            first, now_rd, now_wr = current[uuid]
            if first is not dom:  # a UUID listed twice: this one's own counters
                now_rd, now_wr = dom.io_totals()
            rd = (now_rd - then_rd) / seconds
            wr = (now_wr - then_wr) / seconds
            rd = rd if rd > 0.0 else 0.0
            wr = wr if wr > 0.0 else 0.0
            rates[uuid] = (cpu, rd, wr)
            hist = history.get(uuid)
            if hist is None:  # not setdefault: that would build a _History (two deques) every time
                hist = history[uuid] = _History()
            hist.cpu.append(cpu or 0.0)
            hist.io.append(rd + wr)
        if len(history) > len(current):  # domains gone (transient ones come and go): their samples too
            for uuid in [uuid for uuid in history if uuid not in current]:
                del history[uuid]
        lease_inputs = _lease_inputs(snap)
        # (states laid over the last snapshot went into lease status too: this poll's replace them)
        if lease_inputs != entry.lease_inputs or entry.host.label != snap.host.label or entry.confirmed:
            self._lease_cache = None  # lease status is rebuilt only when what it is built from changed
        entry.snapshot = snap
        entry.by_uuid = current
        entry.host = snap.host
        entry.rates = rates
        entry.lease_inputs = lease_inputs
        entry.confirmed = set()
        self._relabel()

    def set_names(self, names: dict[str, str]) -> None:
        """The config's names for hosts (uri -> name), shown in place of their own."""
        self.names = dict(names)
        self._relabel()

    @staticmethod
    def _named(host: Host, before: Host) -> Host:
        """A new poll's host keeps the name it was given (_relabel), unless its own name changed."""
        if not before.display_name or host.display_name or host.own_label != before.own_label:
            return host
        return replace(host, display_name=before.display_name)

    def _relabel(self) -> None:
        """Every host's label: its configured name, else its own; where two hosts would read alike
        (two "hv1"), each with its URI, so their guests' rows can be told apart."""
        own = Counter(entry.host.own_label for uri, entry in self._hosts.items() if uri not in self.names)
        for uri, entry in self._hosts.items():
            label = entry.host.own_label
            wanted = self.names.get(uri) or ("" if own[label] < 2 else f"{label} ({entry.host.shown_uri})")
            if entry.host.display_name != wanted:
                entry.host = replace(entry.host, display_name=wanted)
                if entry.snapshot is not None:
                    entry.snapshot = replace(entry.snapshot, host=entry.host)
                self._lease_cache = None

    def add_host(self, uri: str) -> None:
        """A host added at run time: listed at once, as connecting, after the others."""
        if uri not in self._hosts:
            self._hosts[uri] = _HostEntry(Host(uri=uri, state=ConnectionState.CONNECTING))
            self._lease_cache = None

    def remove_host(self, uri: str) -> None:
        """Forget a host and everything learned from it (its history, counts, lease views)."""
        self._hosts.pop(uri, None)
        self._counts.pop(uri, None)
        self._history.pop(uri, None)
        self._lease_cache = None

    def set_domain_state(self, uri: str, uuid: str, state: DomainState) -> bool:
        """A state the driver confirmed by an action's success, shown before the poll that follows
        brings everything else (the poll is already asked for; it replaces this snapshot)."""
        entry = self._hosts.get(uri)
        if entry is None:
            return False
        snap = entry.snapshot
        if snap is None or snap.domain(uuid) is None:
            return False
        entry.snapshot = replace(snap, domains=tuple(replace(dom, state=state) if dom.uuid == uuid else dom
                                                     for dom in snap.domains))
        entry.confirmed.add(uuid)
        self._lease_cache = None
        return True

    def set_host(self, host: Host) -> None:
        """Record a host's connection state (connecting, error) without new data."""
        entry = self._hosts.setdefault(host.uri, _HostEntry(host))
        entry.host = self._named(host, entry.host)
        self._lease_cache = None
        self._relabel()

    def host_counts(self, uri: str) -> tuple[int, int]:
        """(active, total) domains of a host."""
        snap = self.snapshot(uri)
        if snap is None:
            return (0, 0)
        # Counted once per snapshot: the Hosts pane asks for every host on every host's poll.
        cached = self._counts.get(uri)
        if cached is None or cached[0] is not snap:
            cached = (snap, (sum(1 for d in snap.domains if d.state.is_active), len(snap.domains)))
            self._counts[uri] = cached
        return cached[1]

    def committed(self, uris: Iterable[str]) -> tuple[int, int, int, int]:
        """(vCPUs, memory KiB) of the domains with a process (running, paused...) and (CPUs, memory KiB)
        of these connected hosts: where a new guest still fits, how far the hosts are overcommitted."""
        vcpus = memory = cpus = host_memory = 0
        for uri in uris:
            entry = self._hosts.get(uri)
            if entry is None or entry.snapshot is None or entry.host.state is not ConnectionState.CONNECTED:
                continue
            cpus += entry.host.cpus
            host_memory += entry.host.memory_kib
            for dom in entry.snapshot.domains:
                if dom.state.is_active:
                    vcpus += dom.vcpus
                    memory += dom.memory_kib
        return vcpus, memory, cpus, host_memory

    def domain_rows(self, uri: str | None = None) -> list[DomainRow]:
        """Domains of one host, or of every host when uri is None."""
        rows = []
        for host_uri, entry in self._hosts.items():
            if (uri is not None and host_uri != uri) or entry.snapshot is None:
                continue
            if entry.host.state is not ConnectionState.CONNECTED:
                continue
            for dom in entry.snapshot.domains:
                cpu, rd, wr = entry.rates.get(dom.uuid, (None, None, None))
                rows.append(DomainRow(host_uri, entry.host.label, dom, cpu, rd, wr))
        return rows

    def domain(self, uri: str, uuid: str) -> Domain | None:
        entry = self._hosts.get(uri)
        if entry is None or entry.snapshot is None:
            return None
        return entry.snapshot.domain(uuid)

    def history(self, uri: str, uuid: str) -> tuple[list[float], list[float]]:
        """CPU% and disk bytes/s samples of one domain, oldest first."""
        hist = self._history.get(uri, {}).get(uuid)
        if hist is None:
            return ([], [])
        return (list(hist.cpu), list(hist.io))

    # -- leases --------------------------------------------------------------
    def lease_dirs(self) -> dict[str, list[tuple[str, LeaseDirSnapshot]]]:
        """Lease directory → [(host uri, that host's view)] for every host that has one.

        Hosts name the same path (libvirt's default /var/lib/libvirt/sanlock) whether or not they
        share the directory: two clusters, or standalone hosts, each have their own. Views of one
        path are one directory only when they show it (see locks.sharing.same_lease_dir); otherwise each is its
        own entry, keyed "PATH · HOST" so that its rows stay apart.
        """
        return self._leases().dirs

    def lease_dir_of(self, uri: str) -> str | None:
        """The key in `lease_dirs` of the directory this host's view belongs to."""
        return self._leases().dir_of.get(uri)

    def disk_uses(self, uris: list[str], *, confirmed: bool = True) -> list[DiskUse]:
        """Every disk of every domain on these hosts; `confirmed`: marking the domains whose state an
        action's success confirmed since the lease views were read (not for a fresh read, newer still)."""
        uses = []
        for uri in uris:
            entry = self._hosts[uri]
            snap = entry.snapshot
            if snap is None:
                continue
            laid_over = entry.confirmed if confirmed else set()
            host_id = snap.leases.host_id if snap.leases is not None else 0
            for dom in snap.domains:
                # libvirt releases a guest's leases while it is paused (and starts a migration's
                # target paused, without them): only a running guest holds its disks
                paused = dom.state is DomainState.PAUSED
                running = dom.state.is_active and not paused
                for disk in dom.disks:
                    if disk.has_lease_path:
                        uses.append(DiskUse(entry.host.label, host_id, dom.name, disk.source, running,
                                            disk.needs_exclusive_lease, host_key=uri, paused=paused,
                                            confirmed=dom.uuid in laid_over))
        return uses

    def has(self, uri: str) -> bool:
        return uri in self._hosts

    def fresh_lease_rows(self, uri: str, fresh: LeaseDirSnapshot) -> list[LeaseStatus]:
        """The status rows of uri's lease directory with `fresh` (a full read, just made) in place of
        uri's polled view: what a cleanup preview shows."""
        view = self._leases()
        group = view.dirs.get(view.dir_of.get(uri, ""), [(uri, fresh)])
        views = [fresh] + [other for peer, other in group if peer != uri]  # the fresh files first: they win
        return compute_lease_status(merge_views(views), self.disk_uses([peer for peer, _ in group], confirmed=False))

    def lease_rows(self) -> list[tuple[str, LeaseStatus]]:
        """(lease directory, status) for every lease file and missing lease."""
        return self._leases().rows

    def lease_status_for(self, path: str, uri: str | None = None) -> LeaseStatus | None:
        """The status row of one disk path's lease: in the directory host `uri` uses, when given."""
        view = self._leases()
        wanted = None if uri is None else view.dir_of.get(uri)
        for name in (sanlock_lease_name(path), lockd_lease_name(path)):
            for directory, status in view.by_name.get(name, ()):
                if wanted is None or directory == wanted:
                    return status
        return None

    def disks_held_elsewhere(self, uri: str, dom: Domain) -> list[tuple[str, str]]:
        """(disk target, "host/domain") for each of dom's disks whose lease another domain holds:
        why this one can't start, said by name rather than by sanlock host_id."""
        this = f"{self.host(uri).label}/{dom.name}"
        found = []
        for disk in dom.disks:
            if not disk.needs_exclusive_lease:
                continue
            status = self.lease_status_for(disk.source, uri)
            if status is not None and status.state is LeaseState.HELD and status.holder not in ("", this):
                found.append((disk.target, status.holder))
        return found

    def _leases(self) -> _LeaseView:
        """Directories, their status rows and indexes: built once per change of any host's data
        (the Disks pane asks per disk on every cursor move)."""
        if self._lease_cache is not None:
            return self._lease_cache
        by_path: dict[str, list[tuple[str, LeaseDirSnapshot]]] = {}
        for uri, entry in self._hosts.items():
            if entry.snapshot is not None and entry.snapshot.leases is not None:
                by_path.setdefault(entry.snapshot.leases.directory, []).append((uri, entry.snapshot.leases))
        view = _LeaseView()
        for path, views in by_path.items():
            groups = sharing_groups(views)
            labels = [self._hosts[group[0][0]].host.label for group in groups]
            for group, label in zip(groups, labels, strict=True):
                # Named by the host the operator knows; by its URI when two have one name
                # (fresh installs are all "localhost.localdomain"): one key, one directory.
                shown = label if labels.count(label) == 1 else group[0][0]
                key = path if len(groups) == 1 else f"{path} · {shown}"
                view.dirs[key] = group
                view.dir_of.update((uri, key) for uri, _ in group)
                merged = merge_views([dir_view for _, dir_view in group])
                uses = self.disk_uses([uri for uri, _ in group])
                for status in compute_lease_status(merged, uses):
                    view.rows.append((key, status))
                    view.by_name.setdefault(status.name, []).append((key, status))
        self._lease_cache = view
        return view


@record(frozen=False)
class _LeaseView:
    dirs: dict[str, list[tuple[str, LeaseDirSnapshot]]] = field(default_factory=dict)
    rows: list[tuple[str, LeaseStatus]] = field(default_factory=list)
    dir_of: dict[str, str] = field(default_factory=dict)  # host uri -> its directory's key
    by_name: dict[str, list[tuple[str, LeaseStatus]]] = field(default_factory=dict)

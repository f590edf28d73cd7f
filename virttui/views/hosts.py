"""The Hosts pane's view: "all", then each host in config order, a group's hosts on its branch."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from virttui.drivers.model import ConnectionState, Host
from virttui.fleet import Fleet
from virttui.format import human_kib, latency
from virttui.locks.model import LeaseDirSnapshot
from virttui.records import record
from virttui.views.common import ALL_HOSTS_KEY, Column, cut, group_key, projection
from virttui.widgets.cells import Cell, Row

# Error is auto-sized, so with no errors the hypervisor still fits 80 columns.
COLUMNS: tuple[Column, ...] = (
    ("host", "Host", 10),
    ("state", "State", 12),
    ("doms", "Doms", 5),
    ("cpus", "CPUs", 4),
    ("mem", "Memory", 9),
    ("lat", "Poll", 6),
    ("error", "Last error", None),
    ("hv", "Hypervisor", 11),
    ("lock", "Lockspace", 12),
)
HOST_STYLES = {
    ConnectionState.CONNECTED: "green",
    ConnectionState.CONNECTING: "yellow",
    ConnectionState.ERROR: "bold red",
    ConnectionState.DISCONNECTED: "dim",
}


@record
class HostsView:
    """What the Hosts pane shows. lease_peers: per host, the hosts that shared its lease directory
    when it was last seen connected; the caller hands it to the next hosts_view."""

    rows: tuple[Row, ...]
    columns: tuple[str, ...]
    title: str
    lease_peers: Mapping[str, list[str]]


def hosts_view(fleet: Fleet, group_of: Callable[[str], str], folded: Collection[str],
               lease_peers: Mapping[str, list[str]]) -> HostsView:
    """The Hosts tree: "all", then each host in config order, hosts of a group on its branch (the
    branch placed where its first host is); a folded group's hosts hidden."""
    hosts = fleet.hosts()
    peers = dict(lease_peers)
    active_total = [0, 0]
    top: list[Host | str] = []  # hosts outside any group, and group names
    members: dict[str, list[Host]] = {}
    counts_of: dict[str, tuple[int, int]] = {}
    for host in hosts:
        counts = counts_of[host.uri] = fleet.host_counts(host.uri)
        if host.state is ConnectionState.CONNECTED:  # totals count what the Domains pane lists
            active_total[0] += counts[0]
            active_total[1] += counts[1]
        group = group_of(host.uri)
        if not group:
            top.append(host)
        elif group in members:
            members[group].append(host)
        else:
            members[group] = [host]
            top.append(group)
    rows = [all_row(len(hosts), *active_total)]
    for item in top:
        if isinstance(item, Host):
            rows.append(host_row(item, counts_of[item.uri], lockspace_text(fleet, item.uri, peers)))
            continue
        group_hosts = members[item]
        live = [counts_of[host.uri] for host in group_hosts if host.state is ConnectionState.CONNECTED]
        is_folded = item in folded
        rows.append(group_row(item, group_hosts, (sum(c[0] for c in live), sum(c[1] for c in live)), is_folded))
        if not is_folded:
            for position, host in enumerate(group_hosts):
                branch = "└ " if position == len(group_hosts) - 1 else "├ "
                rows.append(host_row(host, counts_of[host.uri], lockspace_text(fleet, host.uri, peers), branch))
    for gone in set(peers) - set(fleet.uris):  # hosts removed in the console
        del peers[gone]
    # "Last error" only while there is one: empty, it pushed Hypervisor and Lockspace (the
    # host_id's health) off an 80-column terminal.
    columns = tuple(key for key, _, _ in COLUMNS if key != "error" or any(h.last_error for h in hosts))
    indexes = projection(COLUMNS, columns)
    failing = [host for host in hosts if host.last_error]
    title = "Hosts"
    if failing:
        title += f" · {len(failing)} in error · {failing[0].label}: {failing[0].last_error}"
    return HostsView(tuple((key, cut(cells, indexes)) for key, cells in rows), columns, title, peers)


def liveness(leases: LeaseDirSnapshot, host_id: int) -> str:
    """A host_id in a lockspace as sanlock sees it: "failing" has stopped renewing but still holds its
    leases until sanlock declares it dead (host_dead_seconds, 80 s at the default io_timeout)."""
    if host_id in leases.failing_host_ids:
        return "failing"
    return "live" if host_id in leases.live_host_ids else "not live"


def lockspace_text(fleet: Fleet, uri: str, peers: dict[str, list[str]]) -> str:
    """A host's Lockspace cell. A connected host's peers (the hosts sharing its lease directory) are
    written to `peers`: once it fails, they say whether it is still live."""
    snap = fleet.snapshot(uri)
    if snap is None or snap.leases is None:
        return "-"
    leases = snap.leases
    if fleet.host(uri).state is not ConnectionState.CONNECTED:
        return f"id {leases.host_id} {_liveness_seen_by_peers(fleet, peers.get(uri, []), leases.host_id)}"
    peers[uri] = [peer for peer, _ in fleet.lease_dirs().get(fleet.lease_dir_of(uri) or "", []) if peer != uri]
    if leases.error:
        return f"id {leases.host_id} error"
    return f"id {leases.host_id} {liveness(leases, leases.host_id)}"


def _liveness_seen_by_peers(fleet: Fleet, peers: list[str], host_id: int) -> str:
    """A failed host's own view is from before it failed; whether it is still live in the
    lockspace (its guests may still run and hold their leases) is what the hosts that shared its
    directory see now (remembered: once they stop seeing it, its view no longer counts as theirs)."""
    for peer in peers:
        snap = fleet.snapshot(peer)
        if fleet.host(peer).state is ConnectionState.CONNECTED and snap is not None and snap.leases \
                and not snap.leases.error:
            return liveness(snap.leases, host_id)
    return "unknown"


def host_row(host: Host, counts: tuple[int, int], lockspace: str, branch: str = "") -> Row:
    """A host's row; `branch` is its tree line ("├ ", "└ ") when it sits in a group."""
    state = host.state.value
    if host.state is ConnectionState.ERROR and host.retry_in_s is not None:
        state = f"retry in {host.retry_in_s:.0f}s"
    hv = f"{host.hypervisor} {host.hypervisor_version}".strip()
    return (host.uri, (
        Cell(branch + host.label, sort_key=host.label.casefold()),
        Cell(state, HOST_STYLES[host.state]),
        Cell(f"{counts[0]}/{counts[1]}", sort_key=counts),
        Cell(str(host.cpus) if host.cpus else "-", sort_key=host.cpus),
        Cell(human_kib(host.memory_kib) if host.memory_kib else "-", sort_key=host.memory_kib),
        Cell(latency(host.poll_latency_ms)),
        Cell(host.last_error, "red"),
        Cell(hv or "-"),
        Cell(lockspace),
    ))


def group_row(name: str, hosts: list[Host], counts: tuple[int, int], folded: bool) -> Row:
    """A group's branch: its hosts' totals; ▸ when folded (its hosts hidden), ▾ when open."""
    failing = [host for host in hosts if host.state is ConnectionState.ERROR]
    state = f"{len(failing)} in error" if failing else f"{len(hosts)} host{'s' if len(hosts) != 1 else ''}"
    cpus = sum(host.cpus for host in hosts)
    memory = sum(host.memory_kib for host in hosts)
    return (group_key(name), (
        Cell(f"{'▸' if folded else '▾'} {name}", "bold"),
        Cell(state, "bold red" if failing else ""),
        Cell(f"{counts[0]}/{counts[1]}", sort_key=counts),
        Cell(str(cpus) if cpus else "-", sort_key=cpus),
        Cell(human_kib(memory) if memory else "-", sort_key=memory),
        Cell(""),
        Cell(f"{failing[0].label}: {failing[0].last_error}" if failing else "", "red"),
        Cell(""),
        Cell(""),
    ))


def all_row(hosts: int, active: int, total: int) -> Row:
    return (ALL_HOSTS_KEY, (
        Cell("★ all", "bold"),
        Cell(f"{hosts} host{'s' if hosts != 1 else ''}"),
        Cell(f"{active}/{total}"),
        Cell(""),
        Cell(""),
        Cell(""),
        Cell(""),
        Cell(""),
        Cell(""),
    ))

"""The four live panes of the main screen, each a DiffTable with its own columns."""

from __future__ import annotations

import os

from virttui.drivers.model import ConnectionState, Disk, DomainState, Host
from virttui.fleet import DomainRow
from virttui.format import human_bytes, human_kib, latency, percent
from virttui.locks.model import LeaseState, LeaseStatus
from virttui.locks.naming import sanlock_lease_name
from virttui.locks.status import STATE_ORDER as LEASE_ORDER
from virttui.widgets.cells import Cell, Row
from virttui.widgets.difftable import DiffTable

ALL_HOSTS_KEY = "*all*"
KEY_SEP = "\n"  # URIs and UUIDs never contain a newline
GROUP_PREFIX = f"group{KEY_SEP}"  # Hosts row key of a host group: never a URI (no newline in those)

STATE_STYLES = {
    DomainState.RUNNING: "green",
    DomainState.IDLE: "green",
    DomainState.PAUSED: "yellow",
    DomainState.IN_SHUTDOWN: "yellow",
    DomainState.SHUT_OFF: "dim",
    DomainState.CRASHED: "bold red",
    DomainState.PMSUSPENDED: "cyan",
    DomainState.NOSTATE: "dim",
}
STATE_ORDER = {state: index for index, state in enumerate(STATE_STYLES)}
# state reasons that mean something went wrong (a paused guest's full disk, a crash)
ALARMING_REASONS = frozenset({"I/O error", "watchdog", "crashed", "panicked", "failed", "post-copy failed"})
HOST_STYLES = {
    ConnectionState.CONNECTED: "green",
    ConnectionState.CONNECTING: "yellow",
    ConnectionState.ERROR: "bold red",
    ConnectionState.DISCONNECTED: "dim",
}
LEASE_STYLES = {
    LeaseState.HELD: "green",
    LeaseState.FREE: "dim",
    LeaseState.ORPHAN: "yellow",
    LeaseState.MISSING: "bold red",
    LeaseState.CONFLICT: "bold red",
    LeaseState.CORRUPT: "bold magenta",
}


def domain_key(uri: str, uuid: str) -> str:
    return f"{uri}{KEY_SEP}{uuid}"


def group_key(name: str) -> str:
    return GROUP_PREFIX + name


def group_of_key(key: str | None) -> str | None:
    """The group a Hosts row key names, or None when it is a host or "all"."""
    return key[len(GROUP_PREFIX):] if key is not None and key.startswith(GROUP_PREFIX) else None


def split_domain_key(key: str) -> tuple[str, str]:
    uri, _, uuid = key.rpartition(KEY_SEP)
    return uri, uuid


class HostsTable(DiffTable):
    # Error is auto-sized, so with no errors the hypervisor still fits 80 columns.
    COLUMNS = (
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

    @staticmethod
    def row_for(host: Host, counts: tuple[int, int], lockspace: str, branch: str = "") -> Row:
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

    @staticmethod
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

    @staticmethod
    def all_row(hosts: int, active: int, total: int) -> Row:
        return (ALL_HOSTS_KEY, (
            Cell("★ all", "bold"),
            Cell(f"{hosts} hosts"),
            Cell(f"{active}/{total}"),
            Cell(""),
            Cell(""),
            Cell(""),
            Cell(""),
            Cell(""),
            Cell(""),
        ))


class DomainsTable(DiffTable):
    # Keys act on the domain under the cursor: it stays on one domain from the first poll on, so
    # rows sorting above it (a slower host's arriving, a remembered sort by CPU) never slide
    # another domain under a key pressed before the operator has moved the cursor.
    FOLLOW_FROM_START = True
    COLUMNS = (
        ("name", "Name", 16),
        ("host", "Host", 8),
        ("state", "State", 18),  # "paused (I/O error)", "shut off (crashed)"
        ("vcpus", "vCPU", 4),
        ("mem", "Memory", 9),
        ("cpu", "CPU%", 6),
        ("uuid", "UUID", 36),
    )
    SORTABLE = ("host", "name", "state", "cpu", "mem", "vcpus")
    BIG_FIRST = ("cpu", "mem", "vcpus")  # sorted descending
    DEFAULT_SORT = "host"

    @staticmethod
    def row_for(row: DomainRow, pending: str | None, host_order: int = 0,
                cache: dict[str, tuple[tuple, tuple[Cell, ...]]] | None = None, marked: bool = False) -> Row:
        """The row of one domain. With a cache (row key -> what the cells were made from, cells),
        the cells that did not change are the previous Cell objects: only CPU% moves every poll,
        and sync skips a cell that is the same object, so a poll of 100 domains makes 100 Cells,
        not 700 (allocation also feeds the garbage collector, a large cost at 2000 domains)."""
        dom = row.domain
        key = domain_key(row.host_uri, dom.uuid)
        made_from = (dom.name, row.host_label, host_order, dom.state, dom.reason, pending, dom.vcpus, dom.memory_kib,
                     marked)
        cached = cache.get(key) if cache is not None else None
        if cached is not None and cached[0] == made_from:
            name, host, state, vcpus, mem, uuid = cached[1]
            name_key = name.sort_key[0]
        else:
            state_text = f"{pending}…" if pending else dom.state_text
            state_style = "bold yellow" if pending else "bold red" if dom.reason in ALARMING_REASONS \
                else STATE_STYLES[dom.state]
            name_key = dom.name.casefold()
            # a marked domain (space) is one a bulk action will act on
            name = Cell(f"● {dom.name}" if marked else dom.name, "bold magenta" if marked else "",
                        sort_key=(name_key, host_order))
            host = Cell(row.host_label, sort_key=(host_order, name_key))
            state = Cell(state_text, state_style, sort_key=(STATE_ORDER[dom.state], name_key))
            vcpus = Cell(str(dom.vcpus), sort_key=(dom.vcpus, name_key))
            mem = Cell(human_kib(dom.memory_kib), sort_key=(dom.memory_kib, name_key))
            uuid = Cell(dom.uuid, "dim")
            if cache is not None:
                cache[key] = (made_from, (name, host, state, vcpus, mem, uuid))
        cpu = Cell(percent(row.cpu_percent), sort_key=(-1.0 if row.cpu_percent is None else row.cpu_percent, name_key))
        return (key, (name, host, state, vcpus, mem, cpu, uuid))


def short_path(path: str, width: int) -> str:
    """Keep the end of a long path, where the file name is: '…ges/web-01.qcow2'."""
    return path if len(path) <= width else "…" + path[-(width - 1):]


class DisksTable(DiffTable):
    COLUMNS = (
        ("target", "Dev", 4),
        ("source", "Source", 17),
        ("mode", "Mode", 6),
        ("lstate", "Lease", 8),
        ("size", "Size", 9),
        ("format", "Fmt", 5),
        ("lease", "Lease file", 32),
        ("path", "Full path", 60),
    )

    @staticmethod
    def row_for(disk: Disk, lease: LeaseStatus | None, running: bool, has_leases: bool = True,
                held_elsewhere: bool = False) -> Row:
        """held_elsewhere: another domain holds the disk's lease ("by other", not a green "held")."""
        if not has_leases:  # the host runs no sanlock/lockd lock manager: nothing to show
            lease_name, lease_state, style = "", "-", "dim"
        elif not disk.needs_exclusive_lease:
            lease_name, lease_state, style = "", "-" if not disk.source else "n/a", "dim"
        elif lease is None:
            lease_name = sanlock_lease_name(disk.source)
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
        return (disk.target, (
            Cell(disk.target),
            Cell(short_path(disk.source, 17) if disk.source else "(empty)"),
            Cell(mode),
            Cell(lease_state, style),
            Cell(human_bytes(disk.capacity) if disk.capacity else "-", sort_key=disk.capacity),
            Cell(disk.format or "-"),
            Cell(lease_name, "dim"),
            Cell(disk.source),
        ))


class LeasesTable(DiffTable):
    COLUMNS = (
        ("state", "State", 8),
        ("disk", "Disk", 16),
        ("owner", "Held by", 16),
        ("name", "Lease file", 32),
        ("detail", "Detail", 70),
    )
    DEFAULT_SORT = "state"  # problems first, then cleanup candidates, held last

    @staticmethod
    def row_for(directory: str, status: LeaseStatus) -> Row:
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

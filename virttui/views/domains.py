"""The Domains pane's view: the domains of the hosts in scope, filtered, each a row of cells."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence, Set

from virttui.drivers.model import DomainState
from virttui.fleet import DomainRow, Fleet
from virttui.format import human_kib, percent
from virttui.records import record
from virttui.views.common import ALL_HOSTS_KEY, Column, cut, domain_key, group_of_key, projection
from virttui.widgets.cells import Cell, Row

COLUMNS: tuple[Column, ...] = (
    ("name", "Name", 16),
    ("host", "Host", 8),
    ("state", "State", 18),  # "paused (I/O error)", "shut off (crashed)"
    ("vcpus", "vCPU", 4),
    ("mem", "Memory", 9),
    ("cpu", "CPU%", 6),
    ("uuid", "UUID", 36),
)
COLUMN_KEYS = frozenset(key for key, _, _ in COLUMNS)
SORTABLE = ("host", "name", "state", "cpu", "mem", "vcpus")
BIG_FIRST = ("cpu", "mem", "vcpus")  # sorted descending
SORT_LABELS = {"name": "name", "host": "host", "state": "state", "cpu": "CPU%", "mem": "memory", "vcpus": "vCPUs"}

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

CellCache = dict[str, tuple[tuple, tuple[Cell, ...]]]  # row key -> what the cells were made from, cells


class DomainsCache:
    """What domains_view keeps between calls, per host; its owner (the screen) holds one.

    rows: what the host's rows were built from, and the rows. A poll of one host rebuilds only that
    host's rows; the others are handed to sync as the same objects, which it skips. Rebuilding all
    2000 rows of 20 hosts on every host's poll took ~200 ms a poll and saturated the UI.
    cells: domain_row's cell cache. searchable: [snapshot, host, domain rows, search texts]."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[tuple, tuple[Row, ...]]] = {}
        self.cells: dict[str, CellCache] = {}
        self.searchable: dict[str, list] = {}

    def forget_gone(self, uris: Collection[str]) -> None:
        """Drop the hosts no longer in `uris` (removed in the console)."""
        if len(self.rows) > len(uris):
            for gone in set(self.rows) - set(uris):
                for cache in (self.rows, self.cells, self.searchable):
                    cache.pop(gone, None)


@record
class DomainsView:
    rows: tuple[Row, ...]
    title: str


def next_sort(shown: Collection[str], current: str | None) -> tuple[str, bool]:
    """The sort after `current` (o): the next of SORTABLE among the columns shown, big numbers first."""
    order = [key for key in SORTABLE if key in shown]
    position = order.index(current) if current in order else -1
    column = order[(position + 1) % len(order)]
    return column, column in BIG_FIRST


def first_sort(shown: Collection[str]) -> tuple[str, bool]:
    """The sort when the sort column is no longer shown: by the first sortable column left."""
    column = next(key for key in SORTABLE if key in shown)
    return column, column in BIG_FIRST


def remembered_sort(column: str | None, reverse: bool) -> str:
    """The sort as the config keeps it: the column, "-" first when it runs the other way round from
    usual (O), so every change of sort or columns keeps an inversion."""
    inverted = reverse != (column in BIG_FIRST)
    return ("-" if inverted else "") + (column or "")


def parse_sort(text: str, shown: Collection[str]) -> tuple[str, bool] | None:
    """A sort the config remembers ("-cpu": the other way round from usual), if it can apply to `shown`."""
    column = text.removeprefix("-")
    if column in SORTABLE and column in shown:
        return column, (column in BIG_FIRST) != text.startswith("-")
    return None


def remembered_columns(names: Sequence[str]) -> tuple[str, ...] | None:
    """The columns the config remembers, names it does not know ignored (None: none known)."""
    known = [key for key in names if key in COLUMN_KEYS]
    return (*known, "name") if known else None


def domain_scope(fleet: Fleet, group_of: Callable[[str], str], hosts_key: str | None) -> tuple[set[str] | None, str]:
    """The hosts whose domains the Domains pane shows for the Hosts row `hosts_key` (None: all)
    and how its title says so."""
    group = group_of_key(hosts_key)
    if group is not None:
        return {uri for uri in fleet.uris if group_of(uri) == group}, f"group {group}"
    if hosts_key in (None, ALL_HOSTS_KEY):
        return None, "all hosts"
    return {hosts_key}, fleet.host(hosts_key).label


def domains_view(fleet: Fleet, cache: DomainsCache, *, hosts: Collection[str] | None = None,
                 scope: str = "all hosts", filter_text: str = "",
                 pending: Mapping[tuple[str, str], str] | None = None,
                 marked: Set[tuple[str, str]] = frozenset(), columns: Sequence[str] | None = None,
                 sort: str | None = None, reverse: bool = False) -> DomainsView:
    """The Domains rows of `hosts` (None: all) whose name, host, state, UUID or disk path holds
    `filter_text`, in host order (the pane sorts them by `sort`), cut to `columns` (None: all),
    and the pane's title."""
    pending = pending or {}
    needle = filter_text.casefold()
    indexes = None if columns is None else projection(COLUMNS, columns)
    rows: list[Row] = []
    uris = fleet.uris
    for index, uri in enumerate(uris):
        if hosts is None or uri in hosts:
            rows.extend(_host_rows(fleet, cache, uri, index, needle, pending, marked, indexes))
    cache.forget_gone(uris)
    title = f"Domains · {scope} · {len(rows)}"
    if marked:
        shown = {row[0] for row in rows}
        hidden = sum(1 for uri, uuid in marked if domain_key(uri, uuid) not in shown)
        title += f" · {len(marked)} marked" + (f", {hidden} hidden" if hidden else "")
    if filter_text:
        title += f" · filter “{filter_text}”"
    if sort:
        title += f" · sort {SORT_LABELS[sort]} {'▼' if reverse else '▲'}"
    if hosts is not None:  # one host or a group: what its guests with a process (paused too) take of it
        vcpus, memory, cpus, host_memory = fleet.committed(hosts)
        if cpus:
            title += f" · in use {vcpus}/{cpus} vCPU, {human_kib(memory)}/{human_kib(host_memory)}"
    return DomainsView(tuple(rows), title)


def _host_rows(fleet: Fleet, cache: DomainsCache, uri: str, index: int, needle: str,
               pending: Mapping[tuple[str, str], str], marked: Set[tuple[str, str]],
               indexes: tuple[int, ...] | None) -> tuple[Row, ...]:
    """The Domains rows of one host, rebuilt only when its snapshot, host state, filter, pending
    actions, marks or columns changed (Fleet replaces the snapshot and Host objects whenever they change)."""
    waiting = tuple(sorted((key[1], label) for key, label in pending.items() if key[0] == uri))
    waiting += tuple(sorted(("marked", key[1]) for key in marked if key[0] == uri))
    snapshot, host = fleet.snapshot(uri), fleet.host(uri)
    cached = cache.rows.get(uri)
    if cached is not None:
        (old_snapshot, old_host, *old_rest), old_rows = cached
        if old_snapshot is snapshot and old_host is host and old_rest == [needle, index, waiting, indexes]:
            return old_rows
    rows: list[Row] = []
    cells = cache.cells.setdefault(uri, {})
    # The host's domain rows and, once a filter asks, their casefolded search texts, kept
    # per snapshot: a filter keystroke then re-filters 2000 domains in ~1 ms, not ~10.
    known = cache.searchable.get(uri)
    if known is None or known[0] is not snapshot or known[1] is not host:
        known = [snapshot, host, fleet.domain_rows(uri), None]
        cache.searchable[uri] = known
    domains = known[2]
    if needle and known[3] is None:
        known[3] = [(row.domain.name.casefold(), row.host_label.casefold(), row.domain.state_text.casefold(),
                     row.domain.uuid, "\n".join(disk.source for disk in row.domain.disks).casefold())
                    for row in domains]  # a UUID from a log line, an image path: found too (see below)
    fields = searched_fields(needle)
    for position, row in enumerate(domains):
        if needle and not any(needle in known[3][position][field] for field in fields):
            continue
        key, full = domain_row(row, pending.get((row.host_uri, row.domain.uuid)), index, cells,
                               (row.host_uri, row.domain.uuid) in marked)
        rows.append((key, cut(full, indexes)))
    if len(cells) > len(domains):  # forget domains the host no longer has
        keep = {domain_key(uri, row.domain.uuid) for row in domains}
        for key in [key for key in cells if key not in keep]:
            del cells[key]
    built = tuple(rows)
    cache.rows[uri] = ((snapshot, host, needle, index, waiting, indexes), built)
    return built


_HEX = frozenset("0123456789abcdef-")


def searched_fields(needle: str) -> tuple[int, ...]:
    """Which search texts (name, host, state, UUID, disk paths) a filter is matched against. A UUID
    only for 8 or more hex digits and a disk path only for text with a "/": else a first letter
    like "b" would match nearly every UUID, and every path through /var/lib."""
    fields: tuple[int, ...] = (0, 1, 2)
    if len(needle) >= 8 and _HEX.issuperset(needle):
        fields += (3,)
    if "/" in needle:
        fields += (4,)
    return fields


def domain_row(row: DomainRow, pending: str | None, host_order: int = 0, cache: CellCache | None = None,
               marked: bool = False) -> Row:
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

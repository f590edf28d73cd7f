"""The main screen: Hosts, Domains, Disks and Leases panes, live."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.message_pump import MessagePumpClosed
from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Input

from virttui import actiontable as registry
from virttui.actiontable import ActionSpec
from virttui.crash import contained
from virttui.drivers.model import ConnectionState, Domain, Host
from virttui.format import human_kib
from virttui.messages import FleetUpdated
from virttui.screens.lifecycle import LifecycleActions, action_bindings
from virttui.widgets.difftable import Row
from virttui.widgets.keysfooter import KeysFooter
from virttui.widgets.panes import (
    ALL_HOSTS_KEY,
    DisksTable,
    DomainsTable,
    HostsTable,
    LeasesTable,
    domain_key,
    group_key,
    group_of_key,
    split_domain_key,
)

if TYPE_CHECKING:
    from virttui.locks.model import LeaseDirSnapshot

LEASE_AGE_EPOCH = 1e9  # an as_of before 2001 is no wall time (a test's stepped clock): no age shown
SORT_LABELS = {"name": "name", "host": "host", "state": "state", "cpu": "CPU%", "mem": "memory", "vcpus": "vCPUs"}



def _liveness(leases: LeaseDirSnapshot, host_id: int) -> str:
    """A host_id in a lockspace as sanlock sees it: "failing" has stopped renewing but still holds its
    leases until sanlock declares it dead (host_dead_seconds, 80 s at the default io_timeout)."""
    if host_id in leases.failing_host_ids:
        return "failing"
    return "live" if host_id in leases.live_host_ids else "not live"

class MainScreen(LifecycleActions, Screen):
    """Four panes; lifecycle keys act on the domain under the Domains cursor."""

    # The Footer shows what fits, in this order: Help first (it lists every key), the lifecycle keys,
    # then the rest; the rarer keys are in Help and the command palette only (at 120 columns the
    # Footer used to end in "- Remo", Quit never shown).
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        *action_bindings("main"),
        Binding("enter", "open_detail", "Details", show=False),
        Binding("slash", "filter", "Filter"),
        Binding("o", "sort", "Sort", show=False),
        Binding("O", "invert_sort", "Invert sort", show=False),
        Binding("ctrl+r", "refresh_now", "Refresh now", show=False),
        Binding("x", "cleanup", "Clean"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("space", "mark", "Mark"),
        Binding("asterisk", "mark_all", "Mark all", show=False),
        Binding("C", "columns", "Columns", show=False),
        Binding("z", "zoom", "Zoom", show=False),
        # Screen-wide, not on the Hosts pane: keys shown only while a pane has focus make the
        # Footer recompose on every Tab into or out of it (~40 ms at 2000 domains, measured).
        Binding("plus", "add_host", "Add host", show=False),
        Binding("minus", "remove_host", "Remove host", show=False),
        Binding("K", "review_host_key", "Check host key", show=False),
    ]

    # Screen.focused repaints the whole screen when it changes: every Tab re-rendered all four panes
    # and the Footer (~20 ms of a ~55 ms pane switch at 2000 domains, measured). The two panes
    # whose focus changed restyle and repaint themselves; nothing else shows focus.
    focused: Reactive[Widget | None] = Reactive(None, repaint=False)

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self._folded: set[str] = set()  # host groups whose hosts the Hosts tree hides
        # Per host: (what its rows were built from, the rows). A poll of one host rebuilds only that
        # host's rows; the others are handed to sync as the same objects, which it skips. Rebuilding
        # all 2000 rows of 20 hosts on every host's poll took ~200 ms a poll and saturated the UI.
        self._domain_rows: dict[str, tuple[tuple, list[Row]]] = {}
        self._domain_cells: dict[str, dict] = {}  # per host: DomainsTable.row_for's cell cache
        self._searchable: dict[str, list] = {}  # per host: [snapshot, host, domain rows, search texts]
        self._offered: object = self  # lifecycle actions the Footer shows; self: not yet known
        self._titles: dict[str | None, str] = {}  # pane id -> border title last set by refresh_view
        self.marked: set[tuple[str, str]] = set()  # (host uri, uuid) marked for a bulk action
        # (row key the cursor was on, row key a poll slid it to) after the cursor's domain left the
        # list (its host failed, it was undefined elsewhere): until the operator moves the cursor,
        # no key acts on a domain they did not choose.
        self._displaced: tuple[str, str] | None = None
        self._lease_peers: dict[str, list[str]] = {}  # host uri -> hosts that shared its lease directory
        self._leases_shown: tuple[object, str, str] | None = None  # (fleet's lease rows, their summary, error)

    def compose(self) -> ComposeResult:
        yield HostsTable(id="hosts")
        yield DomainsTable(id="domains")
        with Horizontal(id="bottom"):
            yield DisksTable(id="disks")
            yield LeasesTable(id="leases")
        box = Input(placeholder="filter domains by name, host, state, UUID or disk path (Enter keeps, Esc clears)",
                    id="filter")
        box.cursor_blink = not self.app.is_headless  # a blinking cursor would make snapshots flaky
        yield box
        yield KeysFooter(compact=True, show_command_palette=False)

    @contained
    def on_mount(self) -> None:
        self.query_one("#disks").border_title = "Disks"
        self.query_one("#leases").border_title = "Leases"
        self.query_one("#filter").display = False
        domains = self.query_one(DomainsTable)
        domains.focus()
        self._apply_remembered(domains)
        # The Disks pane follows the Domains cursor. Refreshed on RowHighlighted alone, it was
        # painted a frame after the cursor (~20 ms later at 60 fps); refreshed as the cursor
        # moves, both change in one frame. The message still refreshes it (a cheap no-op then).
        domains.cursor_moved = self._domain_changed
        # The app's broadcast_fleet posts to every screen on the stack, the app's empty default
        # screen under this one too. In Textual 8.2.8 a screen below the top one ends every message
        # it handles by marking the whole top screen dirty (its _repaint_required stays set), so
        # each poll repainted all cells of the terminal: ~26 ms a frame at 2000 domains, a fifth
        # of a core. That screen shows nothing of the fleet: it need not hear about it.
        for screen in self.app.screen_stack:
            if type(screen) is Screen:
                screen.disable_messages(FleetUpdated)
        self.refresh_view()

    def _apply_remembered(self, domains: DomainsTable) -> None:
        """The Domains columns and sort the config file remembers (names it does not know are ignored)."""
        config = self.console.roster.config
        if config is None:
            return
        columns = {key for key, _, _ in DomainsTable.COLUMNS}
        known = [key for key in config.domain_columns if key in columns]
        if known:
            domains.show_columns((*known, "name"))
        sort = config.domain_sort.removeprefix("-")  # "-cpu": the other way round from usual (O)
        if sort in DomainsTable.SORTABLE and sort in domains.shown_columns:
            domains.sort_column = sort
            domains.sort_reverse = (sort in DomainsTable.BIG_FIRST) != config.domain_sort.startswith("-")
        elif domains.sort_column is None:
            domains.sort_column = "name"

    def on_screen_resume(self) -> None:
        """On top again (a dialog closed): a host key question that had to wait is asked now."""
        self.console.host_keys.ask_deferred()

    # -- data ----------------------------------------------------------------
    @contained
    def on_fleet_updated(self, message: FleetUpdated) -> None:
        # Polls land in bursts (every host polled at once by a refresh, hosts in step): when the
        # next message waiting is another FleetUpdated, its refresh_view will show this one's data
        # too (the app applies before it posts), so one refresh serves the burst, not one per host.
        try:
            following = self._peek_message()
        except MessagePumpClosed:  # the screen is closing (the app quits): nothing left to show
            return
        if isinstance(following, FleetUpdated):
            return
        self.refresh_view(from_poll=True)

    def refresh_view(self, *, from_poll: bool = False) -> None:
        self._prune_marks()
        self._refresh_hosts()
        self._refresh_domains(from_poll=from_poll)
        self._refresh_disks()
        self._refresh_leases()
        self._refresh_bindings()

    def _refresh_bindings(self) -> None:
        """refresh_bindings only when the lifecycle keys on offer change (check_action depends on
        nothing else): every call had the Footer recompose all its keys, ~30 ms a refresh; it
        now flips the keys' enabled state in place (KeysFooter), but still gathers the bindings."""
        current = self.current_domain()
        offered: object = None if current is None else registry.valid_ids(current[1].state)
        if self.marked:  # with marks the keys act on the marked domains (offers)
            offered = (offered, frozenset().union(*(registry.valid_ids(dom.state) for _, dom in self.marked_domains())))
        if offered != self._offered:
            self._offered = offered
            self.refresh_bindings()
            self.query_one(KeysFooter).show_enabled_now()

    def _refresh_hosts(self) -> None:
        """The Hosts tree: "all", then each host in config order, hosts of a group on its branch
        (the branch placed where its first host is)."""
        fleet = self.console.fleet
        roster = self.console.roster
        hosts = fleet.hosts()
        active_total = [0, 0]
        top: list[Host | str] = []  # hosts outside any group, and group names
        members: dict[str, list[Host]] = {}
        counts_of: dict[str, tuple[int, int]] = {}
        for host in hosts:
            counts = counts_of[host.uri] = fleet.host_counts(host.uri)
            if host.state is ConnectionState.CONNECTED:  # totals count what the Domains pane lists
                active_total[0] += counts[0]
                active_total[1] += counts[1]
            group = roster.group_of(host.uri)
            if not group:
                top.append(host)
            elif group in members:
                members[group].append(host)
            else:
                members[group] = [host]
                top.append(group)
        rows = [HostsTable.all_row(len(hosts), *active_total)]
        for item in top:
            if isinstance(item, Host):
                rows.append(HostsTable.row_for(item, counts_of[item.uri], self._lockspace_text(item.uri)))
                continue
            group_hosts = members[item]
            live = [counts_of[host.uri] for host in group_hosts if host.state is ConnectionState.CONNECTED]
            folded = item in self._folded
            rows.append(HostsTable.group_row(item, group_hosts, (sum(c[0] for c in live), sum(c[1] for c in live)),
                                             folded))
            if not folded:
                for position, host in enumerate(group_hosts):
                    branch = "└ " if position == len(group_hosts) - 1 else "├ "
                    rows.append(HostsTable.row_for(host, counts_of[host.uri], self._lockspace_text(host.uri), branch))
        for gone in set(self._lease_peers) - set(fleet.uris):  # hosts removed in the console
            del self._lease_peers[gone]
        table = self.query_one(HostsTable)
        before = table.highlighted_key
        # "Last error" only while there is one: empty, it pushed Hypervisor and Lockspace (the
        # host_id's health) off an 80-column terminal. Showing or hiding it empties the table.
        columns = [key for key, _, _ in HostsTable.COLUMNS if key != "error" or any(h.last_error for h in hosts)]
        relaid = list(table.shown_columns) != columns
        if relaid:
            table.show_columns(columns)
        rows = [(key, table.project(cells)) for key, cells in rows]
        table.sync(rows)
        if relaid and before is not None and any(key == before for key, _ in rows):
            table.follow_key = True
            table.move_to_key(before)
        if before is not None and all(key != before for key, _ in rows):
            # its row went (a host removed, a group folded): to its group's row, or to "all",
            # rather than wherever the cursor slid to
            group = roster.group_of(before)
            table.follow_key = True
            table.move_to_key(group_key(group) if group in self._folded else ALL_HOSTS_KEY)
        failing = [host for host in hosts if host.last_error]
        title = "Hosts"
        if failing:
            title += f" · {len(failing)} in error · {failing[0].label}: {failing[0].last_error}"
        self._set_title(table, title)

    def _set_title(self, table: DataTable, title: str) -> None:
        """Set a border title only when it changes: every assignment repaints the whole pane."""
        if self._titles.get(table.id) != title:
            self._titles[table.id] = title
            table.border_title = Content(title)  # plain text: names and errors are not markup

    def _lockspace_text(self, uri: str) -> str:
        snap = self.console.fleet.snapshot(uri)
        if snap is None or snap.leases is None:
            return "-"
        leases = snap.leases
        fleet = self.console.fleet
        if fleet.host(uri).state is not ConnectionState.CONNECTED:
            return f"id {leases.host_id} {self._liveness_seen_by_peers(uri, leases.host_id)}"
        self._lease_peers[uri] = [peer for peer, _ in fleet.lease_dirs().get(fleet.lease_dir_of(uri) or "", [])
                                  if peer != uri]
        if leases.error:
            return f"id {leases.host_id} error"
        return f"id {leases.host_id} {_liveness(leases, leases.host_id)}"

    def _liveness_seen_by_peers(self, uri: str, host_id: int) -> str:
        """A failed host's own view is from before it failed; whether it is still live in the
        lockspace (its guests may still run and hold their leases) is what the hosts that shared its
        directory see now (remembered: once they stop seeing it, its view no longer counts as theirs)."""
        fleet = self.console.fleet
        for peer in self._lease_peers.get(uri, []):
            snap = fleet.snapshot(peer)
            if fleet.host(peer).state is ConnectionState.CONNECTED and snap is not None and snap.leases \
                    and not snap.leases.error:
                return _liveness(snap.leases, host_id)
        return "unknown"

    @property
    def selected_host(self) -> str | None:
        """URI of the host row under the Hosts cursor; None for "all hosts" or a group."""
        key = self.query_one(HostsTable).highlighted_key
        return None if key in (None, ALL_HOSTS_KEY) or group_of_key(key) is not None else key

    @property
    def selected_group(self) -> str | None:
        """The group under the Hosts cursor, or the group of the host under it."""
        key = self.query_one(HostsTable).highlighted_key
        group = group_of_key(key)
        if group is None and key not in (None, ALL_HOSTS_KEY):
            group = self.console.roster.group_of(key) or None
        return group

    def scope(self) -> tuple[set[str] | None, str]:
        """The hosts whose domains the Domains pane shows (None: all) and how its title says so."""
        key = self.query_one(HostsTable).highlighted_key
        group = group_of_key(key)
        if group is not None:
            roster = self.console.roster
            return {uri for uri in self.console.fleet.uris if roster.group_of(uri) == group}, f"group {group}"
        if key in (None, ALL_HOSTS_KEY):
            return None, "all hosts"
        return {key}, self.console.fleet.host(key).label

    def _refresh_domains(self, *, from_poll: bool = False) -> None:
        fleet = self.console.fleet
        pending = self.console.actions.pending
        needle = self.filter_text.casefold()
        shown, scope = self.scope()
        table = self.query_one(DomainsTable)
        rows: list[Row] = []
        uris = fleet.uris
        for index, uri in enumerate(uris):
            if shown is None or uri in shown:
                rows.extend(self._host_domain_rows(uri, index, needle, pending, table))
        if len(self._domain_rows) > len(uris):  # hosts removed in the console
            for gone in set(self._domain_rows) - set(uris):
                for cache in (self._domain_rows, self._domain_cells, self._searchable):
                    cache.pop(gone, None)
        before = table.highlighted_key
        table.sync(rows)
        if from_poll and (before is not None or self._displaced is not None):
            self._guard_displaced_cursor(table, before, rows)
        title = f"Domains · {scope} · {len(rows)}"
        if self.marked:
            title += f" · {len(self.marked)} marked"
        if self.filter_text:
            title += f" · filter “{self.filter_text}”"
        if table.sort_column:
            title += f" · sort {SORT_LABELS[table.sort_column]} {'▼' if table.sort_reverse else '▲'}"
        if shown is not None:  # one host or a group: what its guests with a process (paused too) take of it
            vcpus, memory, cpus, host_memory = fleet.committed(shown)
            if cpus:
                title += f" · in use {vcpus}/{cpus} vCPU, {human_kib(memory)}/{human_kib(host_memory)}"
        self._set_title(table, title)

    def _guard_displaced_cursor(self, table: DomainsTable, before: str | None, rows: list[Row]) -> None:
        """A poll took the cursor's row away and the cursor slid onto another domain, maybe another
        host's: keys stay off until the operator moves it, and it goes back if the row returns."""
        if self._displaced is not None:
            lost, _ = self._displaced
            if any(key == lost for key, _ in rows):  # its host is back: the cursor goes home
                self._displaced = None
                table.move_to_key(lost)
            else:
                self._displaced = (lost, table.highlighted_key or "")
            return
        landed = table.highlighted_key
        if landed is None or before is None or landed == before or any(key == before for key, _ in rows):
            return
        self._displaced = (before, landed)
        uri, _ = split_domain_key(before)
        if not self.console.scheduler.has(uri):
            return  # the operator removed its host: no news to them (the keys still wait for a move)
        host = self.console.fleet.host(uri)
        why = "it left the list" if host.state is ConnectionState.CONNECTED else f"{host.label} is {host.state_words}"
        self.notify(f"The domain under the cursor is gone ({why}); keys act again once you move the cursor",
                    severity="warning", markup=False)

    def _host_domain_rows(self, uri: str, index: int, needle: str, pending: dict[tuple[str, str], str],
                          table: DomainsTable) -> list[Row]:
        """The Domains rows of one host, rebuilt only when its snapshot, host state, filter or pending
        actions changed (Fleet replaces the snapshot and Host objects whenever they change)."""
        fleet = self.console.fleet
        waiting = tuple(sorted((key[1], label) for key, label in pending.items() if key[0] == uri))
        waiting += tuple(sorted(("marked", key[1]) for key in self.marked if key[0] == uri))
        snapshot, host = fleet.snapshot(uri), fleet.host(uri)
        cached = self._domain_rows.get(uri)
        if cached is not None:
            (old_snapshot, old_host, *old_rest), old_rows = cached
            if old_snapshot is snapshot and old_host is host and old_rest == [needle, index, waiting]:
                return old_rows
        rows = []
        cells = self._domain_cells.setdefault(uri, {})
        # The host's domain rows and, once a filter asks, their casefolded search texts, kept
        # per snapshot: a filter keystroke then re-filters 2000 domains in ~1 ms, not ~10.
        known = self._searchable.get(uri)
        if known is None or known[0] is not snapshot or known[1] is not host:
            known = [snapshot, host, fleet.domain_rows(uri), None]
            self._searchable[uri] = known
        domains = known[2]
        if needle and known[3] is None:
            known[3] = [(row.domain.name.casefold(), row.host_label.casefold(), row.domain.state_text.casefold(),
                         row.domain.uuid, "\n".join(disk.source for disk in row.domain.disks).casefold())
                        for row in domains]  # a UUID from a log line, an image path: found too (see below)
        fields = _searched_fields(needle)
        for position, row in enumerate(domains):
            if needle and not any(needle in known[3][position][field] for field in fields):
                continue
            key, full = DomainsTable.row_for(row, pending.get((row.host_uri, row.domain.uuid)), index, cells,
                                             (row.host_uri, row.domain.uuid) in self.marked)
            rows.append((key, table.project(full)))
        if len(cells) > len(domains):  # forget domains the host no longer has
            keep = {domain_key(uri, row.domain.uuid) for row in domains}
            for key in [key for key in cells if key not in keep]:
                del cells[key]
        self._domain_rows[uri] = ((snapshot, host, needle, index, waiting), rows)
        return rows

    def selected_domain(self) -> tuple[str, Domain] | None:
        """(host uri, domain) under the Domains cursor."""
        key = self.query_one(DomainsTable).highlighted_key
        if key is None:
            return None
        uri, uuid = split_domain_key(key)
        dom = self.console.fleet.domain(uri, uuid)
        return (uri, dom) if dom is not None else None

    def _refresh_disks(self) -> None:
        table = self.query_one(DisksTable)
        selected = self.selected_domain()
        if selected is None:
            table.sync([])
            self._set_title(table, "Disks")
            return
        uri, dom = selected
        fleet = self.console.fleet
        snap = fleet.snapshot(uri)
        has_leases = snap is not None and snap.leases is not None
        elsewhere = dict(fleet.disks_held_elsewhere(uri, dom))
        rows = [DisksTable.row_for(disk,
                                   fleet.lease_status_for(disk.source, uri) if disk.needs_exclusive_lease else None,
                                   dom.state.is_active, has_leases, disk.target in elsewhere) for disk in dom.disks]
        table.sync(rows)
        title = f"Disks · {dom.name}"
        if elsewhere:  # the lease is held, but not for this domain: it can't start while that runs
            title += " · in use by " + ", ".join(sorted(set(elsewhere.values())))
        self._set_title(table, title)

    def _refresh_leases(self) -> None:
        table = self.query_one(LeasesTable)
        rows = self.console.fleet.lease_rows()
        if self._leases_shown is None or self._leases_shown[0] is not rows:
            # the fleet rebuilds its rows only when something changed: the same list, nothing to sync
            table.sync([LeasesTable.row_for(directory, status) for directory, status in rows])
            dirs = self.console.fleet.lease_dirs()
            errors = [view.error for views in dirs.values() for _, view in views if view.error]
            counts: dict[str, int] = {}
            for _, status in rows:
                counts[status.state.value] = counts.get(status.state.value, 0) + 1
            summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none"
            self._leases_shown = (rows, summary, errors[0] if errors else "")
        _, summary, error = self._leases_shown
        age = self._lease_files_age()
        reading = any(not view.complete for views in self.console.fleet.lease_dirs().values() for _, view in views)
        self._set_title(table, f"Leases · {summary}" + (" · reading lease files…" if reading else "")
                        + (f" · files read {age} s ago" if age else "")
                        + (f" · {error}" if error else ""))

    def _lease_files_age(self) -> int:
        """Seconds since the oldest pass over lease files behind the pane, in steps of 10, once it is
        10 s or more (0 before): what its daemons hold is current, a file's leader record that old."""
        fleet = self.console.fleet
        passes = [snap.leases.as_of for uri in fleet.uris if (snap := fleet.snapshot(uri)) is not None
                  and snap.leases is not None and snap.leases.as_of > LEASE_AGE_EPOCH]
        if not passes:
            return 0
        age = int(time.time() - min(passes)) // 10 * 10
        return age if age >= 10 else 0

    # -- selection -----------------------------------------------------------
    @on(DataTable.RowHighlighted, "#hosts")
    def _host_changed(self) -> None:
        self._refresh_domains()
        self._refresh_disks()
        self._refresh_bindings()

    @on(DataTable.RowHighlighted, "#domains")
    @contained
    def _domain_changed(self) -> None:
        if self._displaced is not None and self.query_one(DomainsTable).highlighted_key != self._displaced[1]:
            self._displaced = None  # the operator moved the cursor: it is their choice again
        self._refresh_disks()
        self._refresh_bindings()

    @on(DataTable.RowSelected, "#hosts")
    def _host_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a group folds or unfolds its branch."""
        group = group_of_key(event.row_key.value)
        if group is not None:
            self._folded.symmetric_difference_update({group})
            self._refresh_hosts()

    @on(DataTable.RowSelected, "#domains")
    def _domain_selected(self) -> None:
        self.action_open_detail()

    # -- actions -------------------------------------------------------------
    def current_domain(self) -> tuple[str, Domain] | None:
        return None if self._displaced is not None else self.selected_domain()

    def why_no_domain(self) -> str:
        if self._displaced is not None:
            return "the domain under the cursor went away: move the cursor to choose one"
        return "no domain under the cursor"

    def action_open_detail(self) -> None:
        selected = self.current_domain()  # not a domain a poll slid under the cursor
        if selected is not None:
            from virttui.screens.detail import DomainDetailScreen

            self.app.push_screen(DomainDetailScreen(selected[0], selected[1].uuid))

    def action_help(self) -> None:
        from virttui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen())

    def action_cleanup(self) -> None:
        self.console.open_cleanup(self.selected_host)

    def action_zoom(self) -> None:
        """The Domains pane alone, full height (on an 80x24 terminal it otherwise gets ~5 rows)."""
        zoomed = not self.has_class("-zoomed")
        self.set_class(zoomed, "-zoomed")
        if zoomed:
            self.query_one(DomainsTable).focus()  # the pane that had focus may be hidden now

    def action_sort(self) -> None:
        """Cycle the Domains sort over the columns shown: host, name, state, CPU%, memory, vCPUs
        (big numbers first). The choice is remembered in the config file."""
        table = self.query_one(DomainsTable)
        order = [key for key in DomainsTable.SORTABLE if key in table.shown_columns]
        position = order.index(table.sort_column) if table.sort_column in order else -1
        table.sort_column = order[(position + 1) % len(order)]
        table.sort_reverse = table.sort_column in DomainsTable.BIG_FIRST
        table.apply_sort()
        self._refresh_domains()
        self.console.roster.remember(domain_sort=_remembered_sort(table))

    def action_refresh_now(self) -> None:
        """Poll every host now, not at the next tick (after a change made outside virttui)."""
        self.console.scheduler.poll_all()

    def action_invert_sort(self) -> None:
        """The Domains sort the other way round (htop's I): smallest CPU% first, names Z to A."""
        table = self.query_one(DomainsTable)
        if table.sort_column is None:
            return
        table.sort_reverse = not table.sort_reverse
        table.apply_sort()
        self._refresh_domains()
        self.console.roster.remember(domain_sort=_remembered_sort(table))

    def action_columns(self) -> None:
        from virttui.screens.columns import ColumnsScreen

        table = self.query_one(DomainsTable)
        self.app.push_screen(ColumnsScreen(DomainsTable.COLUMNS, table.shown_columns, "name"), self._columns_chosen)

    def _columns_chosen(self, columns: tuple[str, ...] | None) -> None:
        if not columns:
            return
        table = self.query_one(DomainsTable)
        keep = table.highlighted_key
        table.show_columns(columns)
        if table.sort_column is None:  # its sort column went: sort by what is left
            table.sort_column = next(key for key in DomainsTable.SORTABLE if key in columns)
            table.sort_reverse = table.sort_column in DomainsTable.BIG_FIRST
        self._domain_rows.clear()  # the rows were cut to the old columns
        self._refresh_domains()
        if keep is not None:
            table.move_to_key(keep)
        everything = tuple(key for key, _, _ in DomainsTable.COLUMNS)
        self.console.roster.remember(domain_columns=() if columns == everything else columns,
                                 domain_sort=_remembered_sort(table))

    # -- hosts ---------------------------------------------------------------
    def action_add_host(self) -> None:
        self.console.roster.ask_add(self.selected_group or "")

    def action_remove_host(self) -> None:
        uri = self.selected_host
        if uri is None:
            self.notify("put the Hosts cursor on the host to remove", severity="warning", markup=False)
            return
        self.console.roster.ask_remove(uri)

    def action_review_host_key(self) -> None:
        """Ask again about a host key the operator declined: the Hosts cursor's host, else the first such."""
        self.console.host_keys.review(self.selected_host)

    # -- filter --------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    # -- marks and bulk actions ------------------------------------------------------
    def _prune_marks(self) -> None:
        """Marks live only on domains of connected hosts: a removed host's, or one that failed (its
        domains shown as last seen), would be counted, disable every key, and join a bulk action."""
        if self.marked:
            fleet = self.console.fleet
            self.marked = {(uri, uuid) for uri, uuid in self.marked
                           if uri in fleet.uris and fleet.host(uri).state is ConnectionState.CONNECTED
                           and fleet.domain(uri, uuid) is not None}

    def marked_domains(self) -> list[tuple[str, Domain]]:
        """The marked domains that still exist, in host then name order."""
        found = [(uri, self.console.fleet.domain(uri, uuid)) for uri, uuid in self.marked]
        return sorted(((uri, dom) for uri, dom in found if dom is not None),
                      key=lambda item: (self.console.fleet.uris.index(item[0]), item[1].name))

    def action_mark(self) -> None:
        current = self.current_domain()
        if current is None:
            return
        key = (current[0], current[1].uuid)
        self.marked.symmetric_difference_update({key})
        self._refresh_domains()
        self.query_one(DomainsTable).action_cursor_down()
        self._refresh_bindings()

    def action_mark_all(self) -> None:
        """* marks every domain the filter shows; if they are all marked already, unmarks them."""
        table = self.query_one(DomainsTable)
        shown = {split_domain_key(str(key.value)) for key in table.rows}  # a row's key is never None
        self.marked = self.marked - shown if shown <= self.marked else self.marked | shown
        self._refresh_domains()
        self._refresh_bindings()

    def offers(self, spec: ActionSpec) -> bool:
        if spec.bulk and self.marked:
            return any(spec.fits(dom) for _, dom in self.marked_domains())
        return super().offers(spec)

    def action_domain(self, name: str) -> None:
        if self.marked and registry.spec(name).bulk:
            self.console.actions.request_bulk(self.marked_domains(), name, self._bulk_done)
        else:
            super().action_domain(name)

    def _bulk_done(self) -> None:
        self.marked.clear()
        self._refresh_domains()
        self._refresh_bindings()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if not box.display and not self.filter_text:
            if self.marked:  # Esc with no filter: drop the marks
                self._bulk_done()
            return
        box.value = ""
        box.display = False
        self.filter_text = ""
        self.query_one(DomainsTable).focus()
        self._refresh_domains()

    @on(Input.Changed, "#filter")
    @contained
    def _filter_changed(self, event: Input.Changed) -> None:
        printable = "".join(ch for ch in event.value if ch.isprintable())
        if printable != event.value:  # a paste with escape sequences: they would reach the terminal
            event.input.value = printable  # (which posts Changed again, with the clean text)
            return
        self.filter_text = printable.strip()
        self._refresh_domains()
        self._refresh_disks()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        box = self.query_one("#filter", Input)
        if not self.filter_text:
            box.display = False
        self.query_one(DomainsTable).focus()


_HEX = frozenset("0123456789abcdef-")


def _searched_fields(needle: str) -> tuple[int, ...]:
    """Which search texts (name, host, state, UUID, disk paths) a filter is matched against. A UUID
    only for 8 or more hex digits and a disk path only for text with a "/": else a first letter
    like "b" would match nearly every UUID, and every path through /var/lib."""
    fields: tuple[int, ...] = (0, 1, 2)
    if len(needle) >= 8 and _HEX.issuperset(needle):
        fields += (3,)
    if "/" in needle:
        fields += (4,)
    return fields


def _remembered_sort(table: DomainsTable) -> str:
    """The sort as the config keeps it: the column, "-" first when it runs the other way round from
    usual (O), so every change of sort or columns keeps an inversion."""
    inverted = table.sort_reverse != (table.sort_column in DomainsTable.BIG_FIRST)
    return ("-" if inverted else "") + (table.sort_column or "")

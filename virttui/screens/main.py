"""The main screen: Hosts, Domains, Disks and Leases panes, live."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.message_pump import MessagePumpClosed
from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static

from virttui import actiontable as registry
from virttui.console.messages import FleetUpdated
from virttui.drivers.model import ConnectionState, Domain
from virttui.format import plural
from virttui.runtime.crash import contained
from virttui.screens.compactlayout import CompactLayoutMixin
from virttui.screens.keysfirst import KeysFirstMixin
from virttui.screens.lifecycle import action_bindings
from virttui.screens.maincommands import CommandLineMixin
from virttui.screens.marks import MarksMixin
from virttui.views import DomainsCache, LeasesCache, disks_view, domain_scope, domains_view, hosts_view, leases_view
from virttui.views.domains import first_sort, next_sort, parse_sort, remembered_columns, remembered_sort
from virttui.views.hosts import liveness as _liveness  # noqa: F401  (tests import it from here)
from virttui.widgets.difftable import Row
from virttui.widgets.keysfooter import KeysFooter
from virttui.widgets.panes import (
    ALL_HOSTS_KEY,
    DisksTable,
    DomainsTable,
    HostsTable,
    LeasesTable,
    PaneTable,
    group_key,
    group_of_key,
    split_domain_key,
)

FILTER_PLACEHOLDER = "filter domains by name, host, state, UUID or disk path (Enter keeps, Esc clears)"


class MainScreen(CommandLineMixin, CompactLayoutMixin, MarksMixin, KeysFirstMixin, Screen):
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
        Binding("A", "show_all_hosts", "All hosts", show=False),
        Binding("H", "toggle_hosts", "Hosts pane", show=False),
        Binding("b", "switch_bottom_tab", "Disks/Leases", show=False),
        Binding("colon", "command_line", "Command", show=False),
    ]

    # Screen.focused repaints the whole screen when it changes: every Tab re-rendered all four panes
    # and the Footer (~20 ms of a ~55 ms pane switch at 2000 domains, measured). The two panes
    # whose focus changed restyle and repaint themselves; nothing else shows focus.
    focused: Reactive[Widget | None] = Reactive(None, repaint=False)

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self._filter_box: Input | None = None  # mounted at the first /: its styles would cost every start
        self._folded: set[str] = set()  # host groups whose hosts the Hosts tree hides
        self._domains_cache = DomainsCache()  # a poll of one host rebuilds only that host's rows
        self._leases_cache = LeasesCache()
        self._lease_peers: Mapping[str, list[str]] = {}  # host uri -> hosts that shared its lease directory
        self._offered: object = self  # lifecycle actions the Footer shows; self: not yet known
        self.marked: set[tuple[str, str]] = set()  # (host uri, uuid) marked for a bulk action
        # (row key the cursor was on, row key a poll slid it to) after the cursor's domain left the
        # list (its host failed, it was undefined elsewhere): until the operator moves the cursor,
        # no key acts on a domain they did not choose.
        self._displaced: tuple[str, str] | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="hosts-summary", markup=False)
        yield HostsTable(id="hosts")
        yield DomainsTable(id="domains")
        yield Static("", id="bottom-tabs", markup=False)
        with Horizontal(id="bottom"):
            yield DisksTable(id="disks")
            yield LeasesTable(id="leases")
        yield Static("", id="filter-kept", markup=False)
        yield KeysFooter(compact=True, show_command_palette=False)

    @contained
    def on_mount(self) -> None:
        self.query_one("#disks").border_title = "Disks"
        self.query_one("#leases").border_title = "Leases"
        self.query_one("#filter-kept").display = False
        domains = self.query_one(DomainsTable)
        domains.focus()
        self._apply_remembered(domains)
        # The Disks pane follows the Domains cursor. Refreshed on RowHighlighted alone, it was
        # painted a frame after the cursor (~20 ms later at 60 fps); refreshed as the cursor
        # moves, both change in one frame. The message still refreshes it (a cheap no-op then).
        domains.cursor_moved = self._domain_changed
        self.refresh_view()

    def _apply_remembered(self, domains: DomainsTable) -> None:
        """The Domains columns and sort the config file remembers (names it does not know are ignored)."""
        config = self.console.roster.config
        if config is None:
            return
        columns = remembered_columns(config.domain_columns)
        if columns:
            domains.show_columns(columns)
        sort = parse_sort(config.domain_sort, domains.chosen_columns)
        if sort is not None:
            domains.sort_column, domains.sort_reverse = sort
        elif domains.sort_column is None:
            domains.sort_column = "name"

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        """On top again (a dialog closed): a host key question that had to wait is asked now."""
        # Handled here before Screen's own handler (subclass first). The first resume comes right
        # after every widget was styled as it mounted: restyling them all again was a sixth of the
        # start's CSS work. Later resumes (a dialog closed) restyle as Textual does.
        if self.stack_updates == 0:
            event.refresh_styles = False
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
        if isinstance(following, FleetUpdated) or self.poll_draw_waits():
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
        self._show_target(current)
        offered: object = None if current is None else registry.valid_ids(current[1].state)
        if self.marked:  # with marks the keys act on the shown marked domains (offers)
            offered = (offered, frozenset().union(*(registry.valid_ids(dom.state)
                                                    for _, dom in self.shown_marked_domains())))
        offered = (offered, self.guest_keys_live())
        if offered != self._offered:
            self._offered = offered
            self.refresh_bindings()
            self.query_one(KeysFooter).show_enabled_now()

    def _show_target(self, current: tuple[str, Domain] | None) -> None:
        """What the guest keys act on, always in view: the Domains pane's bottom border."""
        table = self.query_one(DomainsTable)
        if self.marked:
            shown, hidden = len(self.shown_marked_domains()), len(self.marked) - len(self.shown_marked_domains())
            target = f"→ {shown} marked" + (f" ({hidden} hidden, not acted on)" if hidden else "")
        elif current is not None:
            target = f"→ {current[1].name} @ {self.console.fleet.host(current[0]).label}"
        else:
            target = ""
        if not self.guest_keys_live() and target:
            target += " · Tab to Domains for guest keys"
        table.set_subtitle(target)

    def _refresh_hosts(self) -> None:
        roster = self.console.roster
        view = hosts_view(self.console.fleet, roster.group_of, self._folded, self._lease_peers)
        self._lease_peers = view.lease_peers
        if self.has_class("-compact"):
            self._show_hosts_summary()
        table = self.query_one(HostsTable)
        before = table.highlighted_key
        relaid = table.lay_out(view.columns)  # showing or hiding "Last error" empties the table
        table.show(view)
        if relaid and before is not None and any(key == before for key, _ in view.rows):
            table.follow_key = True
            table.move_to_key(before)
        if before is not None and all(key != before for key, _ in view.rows):
            # its row went (a host removed, a group folded): to its group's row, or to "all",
            # rather than wherever the cursor slid to
            group = roster.group_of(before)
            table.follow_key = True
            table.move_to_key(group_key(group) if group in self._folded else ALL_HOSTS_KEY)

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
        hosts_key = self.query_one(HostsTable).highlighted_key
        return domain_scope(self.console.fleet, self.console.roster.group_of, hosts_key)

    def _refresh_domains(self, *, from_poll: bool = False) -> None:
        shown, scope = self.scope()
        table = self.query_one(DomainsTable)
        view = domains_view(self.console.fleet, self._domains_cache, hosts=shown, scope=scope,
                            filter_text=self.filter_text, pending=self.console.actions.pending, marked=self.marked,
                            columns=table.shown_columns, sort=table.sort_column, reverse=table.sort_reverse)
        if self.filter_text and shown is not None and not view.rows:
            elsewhere = self._matches_elsewhere(table)
            if elsewhere:
                view = replace(view, title=f"{view.title} · {plural(elsewhere, 'match')} on other hosts: "
                                           "A shows all hosts")
        before = table.highlighted_key
        table.show(view)
        if from_poll and (before is not None or self._displaced is not None):
            self._guard_displaced_cursor(table, before, view.rows)

    def _matches_elsewhere(self, table: DomainsTable) -> int:
        """How many domains of any host the filter matches: the chosen host has none."""
        view = domains_view(self.console.fleet, self._domains_cache, hosts=None, scope="all hosts",
                            filter_text=self.filter_text, pending=self.console.actions.pending, marked=self.marked,
                            columns=table.shown_columns, sort=table.sort_column, reverse=table.sort_reverse)
        return len(view.rows)

    def action_show_all_hosts(self) -> None:
        """The Domains pane over every host (the Hosts cursor to "all hosts")."""
        hosts = self.query_one(HostsTable)
        hosts.follow_key = True
        hosts.move_to_key(ALL_HOSTS_KEY)

    def _guard_displaced_cursor(self, table: DomainsTable, before: str | None, rows: Sequence[Row]) -> None:
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

    def selected_domain(self) -> tuple[str, Domain] | None:
        """(host uri, domain) under the Domains cursor."""
        key = self.query_one(DomainsTable).highlighted_key
        if key is None:
            return None
        uri, uuid = split_domain_key(key)
        dom = self.console.fleet.domain(uri, uuid)
        return (uri, dom) if dom is not None else None

    def _refresh_disks(self) -> None:
        self.query_one(DisksTable).show(disks_view(self.console.fleet, self.selected_domain()))

    def _refresh_leases(self) -> None:
        self.query_one(LeasesTable).show(leases_view(self.console.fleet, self._leases_cache, time.time()))



    @on(PaneTable.Relaid)
    def _pane_relaid(self) -> None:
        """A pane's width changed the columns it shows: its rows are shown again."""
        self.refresh_view()

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
        table.sort_column, table.sort_reverse = next_sort(table.shown_columns, table.sort_column)
        table.apply_sort()
        self._refresh_domains()
        self.console.roster.remember(domain_sort=remembered_sort(table.sort_column, table.sort_reverse))

    def action_refresh_now(self) -> None:
        """Poll every host now, not at the next tick (after a change made outside virttui)."""
        self.console.refresh_now()

    def action_invert_sort(self) -> None:
        """The Domains sort the other way round (htop's I): smallest CPU% first, names Z to A."""
        table = self.query_one(DomainsTable)
        if table.sort_column is None:
            return
        table.sort_reverse = not table.sort_reverse
        table.apply_sort()
        self._refresh_domains()
        self.console.roster.remember(domain_sort=remembered_sort(table.sort_column, table.sort_reverse))

    def action_columns(self) -> None:
        from virttui.screens.columns import ColumnsScreen

        table = self.query_one(DomainsTable)
        self.app.push_screen(ColumnsScreen(DomainsTable.COLUMNS, table.chosen_columns, "name"), self._columns_chosen)

    def _columns_chosen(self, columns: tuple[str, ...] | None) -> None:
        if not columns:
            return
        table = self.query_one(DomainsTable)
        keep = table.highlighted_key
        table.show_columns(columns)
        if table.sort_column is None or table.sort_column not in columns:  # its sort column went
            table.sort_column, table.sort_reverse = first_sort(columns)
        self._refresh_domains()
        if keep is not None:
            table.move_to_key(keep)
        everything = tuple(key for key, _, _ in DomainsTable.COLUMNS)
        self.console.roster.remember(domain_columns=() if columns == everything else columns,
                                 domain_sort=remembered_sort(table.sort_column, table.sort_reverse))

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
    def _open_filter_box(self) -> Input:
        """The filter's input box, mounted the first time it is wanted."""
        if self._filter_box is None:
            self._filter_box = Input(placeholder=FILTER_PLACEHOLDER, id="filter")
            self._filter_box.cursor_blink = not self.app.is_headless  # a blinking cursor: flaky snapshots
            self.mount(self._filter_box, before="#filter-kept")
        return self._filter_box

    def action_filter(self) -> None:
        box = self._open_filter_box()
        self.query_one("#filter-kept").display = False
        box.display = True
        box.focus()


    def action_clear_filter(self) -> None:
        box = self._filter_box
        if (box is None or not box.display) and not self.filter_text:
            if self.marked:  # Esc with no filter: drop the marks
                self._bulk_done()
            return
        if box is not None:
            box.value = ""
            box.display = False
        self.query_one("#filter-kept").display = False
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
        # the filter kept takes one line, not the input's three
        if self._filter_box is not None:
            self._filter_box.display = False
        kept = self.query_one("#filter-kept", Static)
        kept.update(Content.assemble(("Filter: ", "bold"), self.filter_text, ("  (/ edits, Esc clears)", "dim")))
        kept.display = bool(self.filter_text)
        self.query_one(DomainsTable).focus()

"""The main screen on a short terminal (24 rows or fewer): Hosts as one summary line (H opens the
pane), Disks and Leases as tabs (b)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from textual import events
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Static

from virttui.drivers.model import ConnectionState
from virttui.widgets.panes import DisksTable, DomainsTable, HostsTable, LeasesTable

if TYPE_CHECKING:
    from virttui.console.consoleapp import ConsoleApp


class CompactLayoutMixin(Screen):
    """The compact layout's classes, summary line and tabs (MainScreen's parts it uses are declared here)."""

    COMPACT_HEIGHT = 24  # terminals this short get the compact layout

    console: ConsoleApp
    scope: Callable[[], tuple[set[str] | None, str]]

    def on_resize(self, event: events.Resize) -> None:
        # The terminal's height, not the event's: a terminal that reports no size starts at 80x25
        # and settles at 80x24, and the screen's own events then swung between the two for ever.
        compact = self.app.size.height <= self.COMPACT_HEIGHT
        if compact != self.has_class("-compact"):
            self.set_class(compact, "-compact")
            self._show_hosts_summary()
            self._show_bottom_tabs()
            self.call_after_refresh(self.reveal_focused_pane)

    def reveal_focused_pane(self) -> None:
        """A pane the compact layout hides never keeps the focus unseen: it is shown (the Hosts pane,
        when a host was chosen by command or before the terminal shrank) or its tab is."""
        if not self.has_class("-compact"):
            return
        if self.query_one(HostsTable).has_focus and not self.has_class("-hosts-open"):
            self.add_class("-hosts-open")
            self._show_hosts_summary()
        leases_shown = self.has_class("-leases-tab")
        if self.query_one(LeasesTable if not leases_shown else DisksTable).has_focus:
            self.action_switch_bottom_tab()

    def _show_hosts_summary(self) -> None:
        hosts = self.console.fleet.hosts()
        connected = sum(host.state is ConnectionState.CONNECTED for host in hosts)
        active = total = 0
        for host in hosts:
            running, count = self.console.fleet.host_counts(host.uri)
            active, total = active + running, total + count
        _, scope = self.scope()
        text = (f"Hosts {connected}/{len(hosts)} connected · {active}/{total} active · showing {scope} · "
                f"H {'hides' if self.has_class('-hosts-open') else 'lists'} hosts")
        summary = self.query_one("#hosts-summary", Static)
        if str(summary.content) != text:
            summary.update(text)

    def _show_bottom_tabs(self) -> None:
        leases = self.has_class("-leases-tab")
        tabs = self.query_one("#bottom-tabs", Static)
        disks, leases_tab = ("Disks", "[Leases]") if leases else ("[Disks]", "Leases")
        tabs.update(Content.assemble((disks, "" if leases else "bold"), " ", (leases_tab, "bold" if leases else ""),
                                     " ", ("(b switches)", "dim")))

    def action_toggle_hosts(self) -> None:
        """H on a short terminal: the Hosts pane in place of its summary line, and back."""
        if not self.has_class("-compact"):
            self.query_one(HostsTable).focus()
            return
        opening = not self.has_class("-hosts-open")
        self.set_class(opening, "-hosts-open")
        if opening:
            self.query_one(HostsTable).focus()
        else:
            self.query_one(DomainsTable).focus()
        self._show_hosts_summary()

    def action_switch_bottom_tab(self) -> None:
        """b on a short terminal: Disks or Leases in the bottom pane."""
        leases = not self.has_class("-leases-tab")
        self.set_class(leases, "-leases-tab")
        self._show_bottom_tabs()
        hidden = self.query_one(DisksTable if leases else LeasesTable)
        if hidden.has_focus:
            self.query_one(LeasesTable if leases else DisksTable).focus()

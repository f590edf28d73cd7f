"""`:` on the main screen: the command line's commands run against the panes (the words are
console/commands.py's)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from textual.screen import Screen
from textual.widgets import Input

from virttui.format import printable
from virttui.views.domains import remembered_sort
from virttui.widgets.panes import ALL_HOSTS_KEY, DomainsTable, HostsTable

if TYPE_CHECKING:
    from virttui.console.consoleapp import ConsoleApp


class CommandLineMixin(Screen):
    """The main screen's `:` command line (MainScreen's parts it uses are declared, not defined, here)."""

    filter_text: str
    console: ConsoleApp
    _filter_done: Callable[[], None]
    _open_filter_box: Callable[[], Input]
    _refresh_domains: Callable[..., None]
    _refresh_disks: Callable[[], None]
    action_zoom: Callable[[], None]
    action_columns: Callable[[], None]
    action_help: Callable[[], None]
    action_refresh_now: Callable[[], None]
    action_cleanup: Callable[[], None]
    action_add_host: Callable[[], None]
    action_remove_host: Callable[[], None]
    action_mark: Callable[[], None]
    action_toggle_hosts: Callable[[], None]
    action_switch_bottom_tab: Callable[[], None]
    action_domain: Callable[..., None]

    def action_command_line(self) -> None:
        from virttui.console.commands import completions
        from virttui.screens.commandline import CommandLineScreen

        labels = [host.label for host in self.console.fleet.hosts()]
        self.app.push_screen(CommandLineScreen(completions(labels)), self._command_typed)

    def _command_typed(self, line: str | None) -> None:
        if line:
            self.run_command(line)

    def run_command(self, line: str) -> None:
        """One command line: a pane, a host, a filter, a sort, a view or an action on the target."""
        from virttui.console.commands import PANES, SORTS, action_of, parse

        word, argument = parse(line)
        views = {"zoom": self.action_zoom, "columns": self.action_columns, "help": self.action_help,
                 "refresh": self.action_refresh_now, "cleanup": self.action_cleanup, "add": self.action_add_host,
                 "remove": self.action_remove_host, "mark": self.action_mark,
                 "activity": lambda: self.call_later(self.app.run_action, "activity"),
                 "quit": lambda: self.call_later(self.app.run_action, "quit")}
        if word in PANES:
            self._show_pane(word)
        elif word == "host":
            self._choose_host(argument)
        elif word == "filter":
            self._set_filter(argument)
        elif word == "sort" and argument.split(" ")[0].lower() in SORTS:
            self._set_sort(SORTS[argument.split(" ")[0].lower()], argument.lower().endswith(("desc", "reverse")))
        elif word in views:
            views[word]()
        elif action_of(word) is not None:
            self.action_domain(str(action_of(word)))
        else:
            self.notify(f"unknown command: {printable(line)[:60]} (Tab completes; try host, filter, sort, leases)",
                        severity="warning", markup=False)

    def _show_pane(self, name: str) -> None:
        if name == "hosts" and self.has_class("-compact") and not self.has_class("-hosts-open"):
            self.action_toggle_hosts()
            return
        if self.has_class("-compact") and name in ("disks", "leases") and \
                self.has_class("-leases-tab") != (name == "leases"):
            self.action_switch_bottom_tab()
        self.query_one(f"#{name}").focus()

    def _choose_host(self, name: str) -> None:
        hosts = self.query_one(HostsTable)
        wanted = name.strip().casefold()
        if wanted in ("", "all"):
            key: str | None = ALL_HOSTS_KEY
        else:
            key = next((host.uri for host in self.console.fleet.hosts()
                        if wanted in (host.label.casefold(), host.own_label.casefold(), host.uri.casefold())), None)
        if key is None:
            self.notify(f"no host named {printable(name)[:60]}", severity="warning", markup=False)
            return
        hosts.follow_key = True
        hosts.move_to_key(key)

    def _set_filter(self, text: str) -> None:
        box = self._open_filter_box()
        box.value = text
        self.filter_text = text.strip()
        self._filter_done()
        self._refresh_domains()
        self._refresh_disks()

    def _set_sort(self, column: str, reverse: bool) -> None:
        table = self.query_one(DomainsTable)
        if column not in table.chosen_columns:
            self.notify(f"sort {column}: that column is hidden (C shows it)", severity="warning", markup=False)
            return
        table.sort_column, table.sort_reverse = column, reverse
        table.apply_sort()
        self._refresh_domains()
        self.console.roster.remember(domain_sort=remembered_sort(table.sort_column, table.sort_reverse))

"""The command palette's entries: every registry action and every view of the screen on top, and
none of Textual's own developer entries (Keys, Maximize, Screenshot, Theme)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

from virttui import actiontable as registry

if TYPE_CHECKING:
    from textual.screen import Screen

    from virttui.console.hostkeys import HostKeyPrompter
    from virttui.fleet import Fleet
    from virttui.screens.detail import DomainDetailScreen
    from virttui.screens.lifecycle import LifecycleActions
    from virttui.screens.main import MainScreen

Entry = tuple[str, str, Callable[[], object]]  # title, description, what it runs


class PaletteApp(Protocol):
    """What the palette reads of the app (VirtTUI)."""

    fleet: Fleet
    host_keys: HostKeyPrompter

    def action_activity(self) -> None: ...

    async def action_quit(self) -> None: ...


def palette_entries(app: PaletteApp, screen: Screen) -> Iterator[Entry]:
    from virttui.screens.detail import DomainDetailScreen
    from virttui.screens.main import MainScreen

    if isinstance(screen, MainScreen):
        yield from _actions(screen, "main")
        yield from _main_views(screen)
        for uri in app.host_keys.declined:
            yield (f"Ask again about {app.fleet.host(uri).label}'s host key",
                   "Show the trust dialog for its unknown SSH host key again (K)",
                   functools.partial(app.host_keys.review, uri))
    elif isinstance(screen, DomainDetailScreen):
        yield from _actions(screen, "detail")
        yield from _detail_views(screen)
    yield ("Activity", "Every notification and action result, timestamped (L)", app.action_activity)
    yield ("Quit", "Leave virttui; asks first while an action is in progress (q on the main screen)",
           app.action_quit)


def _actions(screen: LifecycleActions, name: str) -> Iterator[Entry]:
    for title, help_text, action in registry.in_palette(name):
        yield title, help_text, functools.partial(screen.action_domain, action)


def _main_views(main: MainScreen) -> Iterator[Entry]:
    yield from (
        ("Domain details", "XML, sparklines and snapshots of the selected domain (Enter)", main.action_open_detail),
        ("Filter domains", "Filter by name, host, state, UUID or disk path (/)", main.action_filter),
        ("Command line", "Type a command: host, filter, sort, leases, an action… (:)", main.action_command_line),
        ("Show all hosts", "The Domains pane over every host (A)", main.action_show_all_hosts),
        ("Sort domains", "Cycle the sort column (o)", main.action_sort),
        ("Invert the sort", "The Domains sort the other way round (O)", main.action_invert_sort),
        ("Choose Domains columns", "Show or hide columns of the Domains pane (C)", main.action_columns),
        ("Zoom the Domains pane", "The Domains pane alone, full height, and back (z)", main.action_zoom),
        ("Mark the domain", "Mark or unmark the domain under the cursor for a bulk action (Space)", main.action_mark),
        ("Mark every shown domain", "Mark all the domains the filter shows, or unmark them (*)", main.action_mark_all),
        ("Hosts pane", "On a short terminal: the Hosts pane in place of its summary line (H)",
         main.action_toggle_hosts),
        ("Disks or Leases", "On a short terminal: switch the bottom pane (b)", main.action_switch_bottom_tab),
        ("Add a host", "Watch another libvirt host, saved to the config file (+)", main.action_add_host),
        ("Remove a host", "Stop watching the host under the Hosts cursor (-)", main.action_remove_host),
        ("Clean up lease files", "Preview and remove unused lease files (x)", main.action_cleanup),
        ("Refresh now", "Poll every host now (Ctrl+R)", main.action_refresh_now),
        ("Help", "Every key (?)", main.action_help),
    )


def _detail_views(detail: DomainDetailScreen) -> Iterator[Entry]:
    yield from (
        ("New snapshot", "Take a snapshot of this domain (n)", detail.action_new_snapshot),
        ("Revert to the snapshot", "Revert to the snapshot under the cursor (v)", detail.action_revert_snapshot),
        ("Delete the snapshot", "Delete the snapshot under the cursor (Del)", detail.action_delete_snapshot),
        ("Memory stats period", "How often the balloon driver reports memory (m)", detail.action_memory_period),
        ("Back", "To the main screen (Esc)", detail.action_back),
    )

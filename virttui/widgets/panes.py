"""The four live panes of the main screen, each a DiffTable with its own columns.

What a pane shows is computed in virttui.views (rows and a title, from plain data); a pane
takes that view and diffs it in (`show`). The row keys, styles and orders are the views',
named here too for the screens and tests that use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from textual.content import Content

from virttui.views import domains, hosts
from virttui.views.common import (
    ALL_HOSTS_KEY,
    GROUP_PREFIX,
    KEY_SEP,
    domain_key,
    group_key,
    group_of_key,
    split_domain_key,
)
from virttui.views.disks import COLUMNS as DISK_COLUMNS
from virttui.views.disks import short_path
from virttui.views.domains import ALARMING_REASONS, STATE_ORDER, STATE_STYLES
from virttui.views.hosts import HOST_STYLES
from virttui.views.leases import COLUMNS as LEASE_COLUMNS
from virttui.views.leases import LEASE_STYLES
from virttui.widgets.cells import Row
from virttui.widgets.difftable import DiffTable

__all__ = [
    "ALARMING_REASONS", "ALL_HOSTS_KEY", "GROUP_PREFIX", "HOST_STYLES", "KEY_SEP", "LEASE_STYLES", "STATE_ORDER",
    "STATE_STYLES", "DisksTable", "DomainsTable", "HostsTable", "LeasesTable", "PaneTable", "PaneView",
    "domain_key", "group_key", "group_of_key", "short_path", "split_domain_key",
]


class PaneView(Protocol):
    """What a view gives a pane: its rows and its border title."""

    @property
    def rows(self) -> Sequence[Row]: ...

    @property
    def title(self) -> str: ...


class PaneTable(DiffTable):
    """A DiffTable that shows a view: its rows diffed in, its title set."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._shown_title: str | None = None  # the border title last set by show

    def show(self, view: PaneView) -> None:
        self.sync(view.rows)
        self.set_title(view.title)

    def set_title(self, title: str) -> None:
        """Set the border title only when it changes: every assignment repaints the whole pane."""
        if self._shown_title != title:
            self._shown_title = title
            self.border_title = Content(title)  # plain text: names and errors are not markup


class HostsTable(PaneTable):
    COLUMNS = hosts.COLUMNS

    def lay_out(self, columns: Sequence[str]) -> bool:
        """Show these columns (HostsView.columns); True when that changed them (the rows went)."""
        if list(self.shown_columns) == list(columns):
            return False
        self.show_columns(columns)
        return True


class DomainsTable(PaneTable):
    # Keys act on the domain under the cursor: it stays on one domain from the first poll on, so
    # rows sorting above it (a slower host's arriving, a remembered sort by CPU) never slide
    # another domain under a key pressed before the operator has moved the cursor.
    FOLLOW_FROM_START = True
    COLUMNS = domains.COLUMNS
    SORTABLE = domains.SORTABLE
    BIG_FIRST = domains.BIG_FIRST  # sorted descending
    DEFAULT_SORT = "host"


class DisksTable(PaneTable):
    COLUMNS = DISK_COLUMNS


class LeasesTable(PaneTable):
    COLUMNS = LEASE_COLUMNS
    DEFAULT_SORT = "state"  # problems first, then cleanup candidates, held last

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._synced_rows: object = None  # the rows last synced

    def show(self, view: PaneView) -> None:
        # the view hands back the very rows it gave before when nothing changed: nothing to sync
        if view.rows is not self._synced_rows:
            self._synced_rows = view.rows
            self.sync(view.rows)
        self.set_title(view.title)

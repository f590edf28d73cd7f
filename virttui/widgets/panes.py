"""The four live panes of the main screen, each a DiffTable with its own columns.

What a pane shows is computed in virttui.views (rows and a title, from plain data); a pane
takes that view and diffs it in (`show`). The row keys, styles and orders are the views',
named here too for the screens and tests that use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol

from textual import events
from textual.content import Content
from textual.message import Message

from virttui.views import domains, hosts
from virttui.views.common import (
    ALL_HOSTS_KEY,
    GROUP_PREFIX,
    KEY_SEP,
    columns_that_fit,
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


FOCUS_MARKER = "▶ "


class PaneView(Protocol):
    """What a view gives a pane: its rows and its border title."""

    @property
    def rows(self) -> Sequence[Row]: ...

    @property
    def title(self) -> str: ...


class PaneTable(DiffTable):
    """A DiffTable that shows a view: its rows diffed in, its title set, and only the columns that
    fit whole (a column cut mid-word reads as another value): DROP_ORDER's go first."""

    DROP_ORDER: ClassVar[tuple[str, ...]] = ()  # the columns given up first on a narrow pane, in order

    class Relaid(Message):
        """The pane's width changed the columns it shows: its rows went and must be synced again."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._shown_title: str | None = None  # the border title last set by show
        self._shown_subtitle: str | None = None
        self._chosen: tuple[str, ...] = tuple(key for key, _, _ in self.COLUMNS)  # wanted, if they fit
        self._fit_width = 0  # the width columns were fitted to; 0: not laid out yet
        self._cut_cache: tuple[object, tuple[tuple[str, ...], Sequence[Row]]] = (None, ((), ()))

    @property
    def chosen_columns(self) -> tuple[str, ...]:
        """The columns wanted (the operator's choice, the view's): shown_columns are those that fit."""
        return self._chosen

    def show_columns(self, keys: Sequence[str]) -> None:
        self._chosen = tuple(key for key, _, _ in self.COLUMNS if key in keys)
        super().show_columns(self._fitting())

    def _fitting(self) -> tuple[str, ...]:
        keep = {self._chosen[0], *((self.sort_column,) if self.sort_column else ())}
        return columns_that_fit(self.COLUMNS, self._chosen, self._fit_width, self.DROP_ORDER, keep)

    def on_resize(self, event: events.Resize) -> None:
        width = event.size.width - 1  # the vertical scrollbar's column
        if width == self._fit_width:
            return
        self._fit_width = width
        fitted = self._fitting()
        if list(fitted) != list(self.shown_columns):
            super().show_columns(fitted)
            self.post_message(self.Relaid())

    def show(self, view: PaneView) -> None:
        self.sync(self.fitted_rows(view))
        self.set_title(view.title)

    def fitted_rows(self, view: PaneView) -> Sequence[Row]:
        """The view's rows cut to the columns that fit; the same rows when they were built for those."""
        rows = view.rows
        shown = self.shown_columns
        if not rows or len(rows[0][1]) == len(shown):
            return rows
        source, cached = self._cut_cache
        if source is rows and cached[0] == shown:
            return cached[1]
        built_for = tuple(getattr(view, "columns", ()) or (key for key, _, _ in self.COLUMNS))
        indexes = tuple(built_for.index(key) for key in shown)
        cut_rows = tuple((key, tuple(cells[index] for index in indexes)) for key, cells in rows)
        self._cut_cache = (rows, (shown, cut_rows))
        return cut_rows

    def set_title(self, title: str) -> None:
        """Set the border title only when it changes: every assignment repaints the whole pane."""
        if self._shown_title != title:
            self._shown_title = title
            self._paint_title()

    def _paint_title(self, focused: bool | None = None) -> None:
        # the focused pane says so in words, not by its border colour alone
        marker = FOCUS_MARKER if (self.has_focus if focused is None else focused) else ""
        self.border_title = Content(marker + (self._shown_title or ""))  # plain text: names are not markup

    # these run before Widget's own handlers update has_focus: the event says which it is
    def on_focus(self) -> None:
        self._paint_title(focused=True)

    def on_blur(self) -> None:
        self._paint_title(focused=False)

    def set_subtitle(self, subtitle: str) -> None:
        """The bottom border's text (what the keys act on), set only when it changes."""
        if self._shown_subtitle != subtitle:
            self._shown_subtitle = subtitle
            self.border_subtitle = Content(subtitle)


class HostsTable(PaneTable):
    COLUMNS = hosts.COLUMNS
    DROP_ORDER = ("hv", "lat", "cpus", "mem", "doms", "error")

    def lay_out(self, columns: Sequence[str]) -> bool:
        """Show these columns (HostsView.columns) as far as they fit; True when that changed them (the rows went)."""
        if list(self.chosen_columns) == list(columns):
            return False
        before = self.shown_columns
        self.show_columns(columns)
        return self.shown_columns != before


class DomainsTable(PaneTable):
    # Keys act on the domain under the cursor: it stays on one domain from the first poll on, so
    # rows sorting above it (a slower host's arriving, a remembered sort by CPU) never slide
    # another domain under a key pressed before the operator has moved the cursor.
    FOLLOW_FROM_START = True
    COLUMNS = domains.COLUMNS
    SORTABLE = domains.SORTABLE
    BIG_FIRST = domains.BIG_FIRST  # sorted descending
    DEFAULT_SORT = "host"
    DROP_ORDER = ("uuid", "vcpus", "mem", "cpu", "host")


class DisksTable(PaneTable):
    COLUMNS = DISK_COLUMNS
    DROP_ORDER = ("path", "lease", "format", "size", "mode")


class LeasesTable(PaneTable):
    COLUMNS = LEASE_COLUMNS
    DEFAULT_SORT = "state"  # problems first, then cleanup candidates, held last
    DROP_ORDER = ("detail", "name", "disk")

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._synced_rows: object = None  # the rows last synced

    def show_columns(self, keys: Sequence[str]) -> None:
        super().show_columns(keys)
        self._synced_rows = None  # the rows went with the columns

    def on_resize(self, event: events.Resize) -> None:
        self._synced_rows = None
        super().on_resize(event)

    def show(self, view: PaneView) -> None:
        # the view hands back the very rows it gave before when nothing changed: nothing to sync
        if view.rows is not self._synced_rows:
            self._synced_rows = view.rows
            self.sync(self.fitted_rows(view))
        self.set_title(view.title)

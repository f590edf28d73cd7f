"""One set of movement keys for every table and viewer of the console.

j k: down, up. g G and Home End: the first, the last row (up and down, never sideways: DataTable's
own Home and End scroll a row-cursor table to its first and last column). PgUp PgDn: a page.
None of them is shown in the Footer: the help screen lists them.
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.containers import ScrollableContainer
from textual.widget import Widget
from textual.widgets import DataTable

# For tables with a row cursor; PgUp PgDn are DataTable's own (a page, the cursor with it).
ROW_KEYS: list[BindingType] = [
    Binding("j", "cursor_down", "Down", show=False),
    Binding("k", "cursor_up", "Up", show=False),
    Binding("g", "scroll_top", "First", show=False),
    Binding("G", "scroll_bottom", "Last", show=False),
    Binding("home", "scroll_top", "First", show=False),
    Binding("end", "scroll_bottom", "Last", show=False),
]

# For what scrolls without a cursor (the XML, the help); PgUp PgDn are the widgets' own.
SCROLL_KEYS: list[BindingType] = [
    Binding("j", "scroll_down", "Down", show=False),
    Binding("k", "scroll_up", "Up", show=False),
    Binding("g", "scroll_first", "Top", show=False),
    Binding("G", "scroll_last", "Bottom", show=False),
    Binding("home", "scroll_first", "Top", show=False),
    Binding("end", "scroll_last", "Bottom", show=False),
]


def to_first(widget: Widget) -> None:
    widget.scroll_to(y=0, animate=False)


def to_last(widget: Widget) -> None:
    widget.scroll_to(y=widget.max_scroll_y, animate=False)


class RowTable(DataTable):
    """A DataTable with a row cursor, moved by the console's keys."""

    BINDINGS: ClassVar[list[BindingType]] = ROW_KEYS

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False)


class ScrollTable(DataTable):
    """A DataTable without a cursor that scrolls up and down only: its columns are meant to fit."""

    BINDINGS: ClassVar[list[BindingType]] = SCROLL_KEYS

    def __init__(self, *, id: str | None = None, classes: str | None = None, show_header: bool = True) -> None:
        super().__init__(id=id, classes=classes, cursor_type="none", show_header=show_header)

    def action_scroll_first(self) -> None:
        to_first(self)

    def action_scroll_last(self) -> None:
        to_last(self)


class Viewer(ScrollableContainer):
    """A scrolled pane of text: the arrow keys scroll it both ways, the console's keys up and down."""

    BINDINGS: ClassVar[list[BindingType]] = SCROLL_KEYS

    def action_scroll_first(self) -> None:
        to_first(self)

    def action_scroll_last(self) -> None:
        to_last(self)

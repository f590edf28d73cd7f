"""A DataTable that is updated by diffing, never rebuilt.

Each poll hands the table the rows it should show; only cells whose value
changed are written, rows that appeared are added and rows that went away
are removed. The cursor follows its row key, not its index, so a re-sort
never moves the operator's selection to another domain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist


class Cell:
    """A table cell: plain text (never parsed as markup), a style, and a sort key."""

    __slots__ = ("text", "style", "sort_key")

    def __init__(self, text: str, style: str = "", sort_key: Any = None) -> None:
        self.text = text
        self.style = style
        self.sort_key = text.casefold() if sort_key is None else sort_key

    def __rich__(self) -> Text:
        return Text(self.text, style=self.style, no_wrap=True, overflow="ellipsis", end="")

    def __eq__(self, other: object) -> bool:
        # The sort key counts: a row whose key changed must be re-sorted even if it looks the same.
        return (isinstance(other, Cell) and self.text == other.text and self.style == other.style
                and self.sort_key == other.sort_key)

    def __hash__(self) -> int:
        return hash((self.text, self.style))

    def __repr__(self) -> str:
        return f"Cell({self.text!r})"


Row = tuple[str, Sequence[Cell]]


def _sort_value(cell: Any) -> tuple[int, Any]:
    key = cell.sort_key if isinstance(cell, Cell) else cell
    return (1, 0) if key is None else (0, key)


class DiffTable(DataTable):
    """Row-cursor table fed by `sync(rows)`; subclasses declare COLUMNS."""

    COLUMNS: ClassVar[tuple[tuple[str, str, int | None], ...]] = ()  # key, label, width (None: fit content)
    DEFAULT_SORT: ClassVar[str | None] = None
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "scroll_top", "Top", show=False),
        Binding("G", "scroll_bottom", "Bottom", show=False),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        self.sort_column: str | None = self.DEFAULT_SORT
        self.sort_reverse = False
        self._auto_width = {key for key, _, width in self.COLUMNS if width is None}
        # Until the operator moves the cursor it stays on the first row; after that it
        # follows its row key, so a re-sort never slides another domain under it.
        self.follow_key = False
        for key, label, width in self.COLUMNS:
            self.add_column(label, key=key, width=width)

    @property
    def highlighted_key(self) -> str | None:
        """Row key under the cursor, or None on an empty table."""
        if self.row_count == 0:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except RowDoesNotExist:
            return None

    def sync(self, rows: Sequence[Row]) -> bool:
        """Make the table show exactly `rows`; returns True when anything changed."""
        wanted = {key: cells for key, cells in rows}
        current = set(key.value for key in self.rows)
        keep_key = self.highlighted_key
        changed = False
        resort = False
        for gone in current - wanted.keys():
            self.remove_row(gone)
            changed = True
        column_keys = [key for key, _, _ in self.COLUMNS]
        for key, cells in rows:
            if key in current:
                for column, cell in zip(column_keys, cells, strict=True):
                    if self.get_cell(key, column) != cell:
                        self.update_cell(key, column, cell, update_width=column in self._auto_width)
                        changed = True
                        resort = resort or column == self.sort_column
            else:
                self.add_row(*cells, key=key)
                changed = True
                resort = True
        if resort and self.sort_column is not None:
            self.apply_sort()
        elif not current and self.sort_column is None:
            pass  # first fill: rows went in in the order given
        if self.follow_key and keep_key is not None and keep_key in wanted:
            self.move_to_key(keep_key)
        return changed

    def on_key(self) -> None:
        self.follow_key = True

    def on_click(self) -> None:
        self.follow_key = True

    def apply_sort(self) -> None:
        keep_key = self.highlighted_key
        if self.sort_column is None:
            return
        self.sort(self.sort_column, key=_sort_value, reverse=self.sort_reverse)
        if self.follow_key and keep_key is not None:
            self.move_to_key(keep_key)

    def move_to_key(self, key: str) -> None:
        """Put the cursor on a row by its key, if the row exists."""
        try:
            index = self.get_row_index(key)
        except RowDoesNotExist:
            return
        if index != self.cursor_row:
            self.move_cursor(row=index, animate=False, scroll=True)

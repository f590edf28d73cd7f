"""A DataTable that is updated by diffing, never rebuilt.

Each poll hands the table the rows it should show; only cells whose value
changed are written, rows that appeared are added and rows that went away
are removed. The cursor follows its row key, not its index, so a re-sort
never moves the operator's selection to another domain.

A changed cell re-renders only its own row (see update_cell): DataTable itself
drops every cached render of the table on any cell update.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey, RowDoesNotExist, RowKey


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
        self._column_keys = [key for key, _, _ in self.COLUMNS]
        self._shown: dict[str, Sequence[Cell]] = {}  # row key -> cells last written by sync, its only writer
        self._stale_rows: set[RowKey] = set()  # rows whose cached renders update_cell left to drop
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
        shown = self._shown
        keep_key = self.highlighted_key
        changed = False
        resort = False
        for gone in shown.keys() - wanted.keys():
            self.remove_row(gone)
            del shown[gone]
            changed = True
        column_keys = self._column_keys
        for key, cells in rows:
            previous = shown.get(key)
            if previous is not None:
                # Compared against what sync last wrote, not DataTable.get_cell (a lookup through
                # RowKey/ColumnKey objects): at 2000 domains that lookup alone took ~60 ms a refresh.
                # A row object the caller reused unchanged is skipped without looking at its cells.
                if cells is previous:
                    continue
                for column, cell, old in zip(column_keys, cells, previous, strict=True):
                    if old != cell:
                        self.update_cell(key, column, cell, update_width=column in self._auto_width)
                        changed = True
                        resort = resort or column == self.sort_column
            else:
                self.add_row(*cells, key=key)
                changed = True
                resort = True
            shown[key] = cells
        if resort and self.sort_column is not None:
            self.apply_sort()
        if self.follow_key and keep_key is not None and keep_key in wanted:
            self.move_to_key(keep_key)
        return changed

    # -- rendering only what changed ---------------------------------------------------------------
    # DataTable.update_cell bumps _update_count, which is part of the key of every render cache
    # (cells, rows, lines), so one new CPU% anywhere re-rendered every visible cell through Rich
    # (~0.3 ms a cell): at 2000 domains that was most of the UI's time, ~150 ms a frame. Here a cell
    # update drops only its row's cached renders (lazily, before the next render) and repaints only
    # that row's region, which is nothing at all when the row is scrolled out of view. Anything
    # that moves rows (add, remove, sort, resize) still bumps _update_count as before.
    # This leans on DataTable internals of the pinned Textual version (8.2.8).
    def update_cell(self, row_key: RowKey | str, column_key: ColumnKey | str, value: Any, *,
                    update_width: bool = False) -> None:
        if update_width:  # a column may change width: everything moves, DataTable's way
            super().update_cell(row_key, column_key, value, update_width=True)
            return
        if isinstance(row_key, str):
            row_key = RowKey(row_key)
        if isinstance(column_key, str):
            column_key = ColumnKey(column_key)
        if row_key not in self._row_locations or column_key not in self._column_locations:
            raise CellDoesNotExist(f"No cell exists for row_key={row_key!r}, column_key={column_key!r}.")
        self._data[row_key][column_key] = value
        self._stale_rows.add(row_key)
        index = self._row_locations.get(row_key)
        top = self.header_height if self.show_header else 0  # DiffTable rows are one line high
        self._refresh_region(Region(0, top + index, max(self.size.width, self.virtual_size.width), 1))

    def _drop_stale_renders(self) -> None:
        stale = self._stale_rows
        self._stale_rows = set()
        indexes = {self._row_locations.get(key) for key in stale if key in self._row_locations}
        for cache, is_stale in (
            (self._cell_render_cache, lambda key: key[0] in stale),  # (row_key, column_key, ...)
            (self._row_render_cache, lambda key: key[0] in stale),  # (row_key, line_no, ...)
            (self._row_renderable_cache, lambda key: key[1] in indexes),  # (update_count, row_index)
        ):
            for key in [key for key in cache.keys() if is_stale(key)]:
                cache.discard(key)
        top = self.header_height if self.show_header else 0
        lines = {top + index for index in indexes}
        for key in [key for key in self._line_cache.keys() if key[0] in lines]:  # (y, x1, x2, ...)
            self._line_cache.discard(key)

    def _render_line(self, y: int, x1: int, x2: int, base_style: Any) -> Strip:
        if self._stale_rows:
            self._drop_stale_renders()
        return super()._render_line(y, x1, x2, base_style)

    def _get_row_renderables(self, row_index: int) -> Any:
        if self._stale_rows:
            self._drop_stale_renders()
        return super()._get_row_renderables(row_index)

    def clear(self, columns: bool = False) -> DiffTable:
        self._shown.clear()
        self._stale_rows.clear()
        return super().clear(columns)

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

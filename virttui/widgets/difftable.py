"""A DataTable that is updated by diffing, never rebuilt.

Each poll hands the table the rows it should show; only cells whose value
changed are written, rows that appeared are added and rows that went away
are removed. The cursor follows its row key, not its index, so a re-sort
never moves the operator's selection to another domain.

A changed cell re-renders only itself and the line it is on, and only when it
is in view (see update_cell, and virttui.widgets.cellrender): DataTable itself drops
every cached render of the table on any cell update.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from textual import messages
from textual.binding import BindingType
from textual.widget import Widget
from textual.widgets.data_table import CellKey, ColumnKey, RowDoesNotExist, RowKey

from virttui.widgets.cellrender import CellRenderTable
from virttui.widgets.cells import Cell, Row, sort_value
from virttui.widgets.compat import TwoWayDict
from virttui.widgets.navigation import ROW_KEYS

__all__ = ["Cell", "DiffTable", "Row"]  # Cell and Row are virttui.widgets.cells', re-exported for the screens


class DiffTable(CellRenderTable):
    """Row-cursor table fed by `sync(rows)`; subclasses declare COLUMNS."""

    COLUMNS: ClassVar[tuple[tuple[str, str, int | None], ...]] = ()  # key, label, width (None: fit content)
    DEFAULT_SORT: ClassVar[str | None] = None
    FOLLOW_FROM_START: ClassVar[bool] = False  # else row 0 until the operator moves the cursor
    BINDINGS: ClassVar[list[BindingType]] = ROW_KEYS  # j k, g G, Home End: rows, never sideways

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        self.sort_column: str | None = self.DEFAULT_SORT
        self.sort_reverse = False
        self._auto_width = {key for key, _, width in self.COLUMNS if width is None}
        # Once the operator has moved the cursor (or from the start, with FOLLOW_FROM_START) it
        # follows its row's key, so a re-sort never slides another row under it.
        self.follow_key = self.FOLLOW_FROM_START
        self._column_keys = [key for key, _, _ in self.COLUMNS]
        self._column_objs = [ColumnKey(key) for key in self._column_keys]
        # Keyed by the row key strings: RowKey hashes through Python code, which at 2000 rows
        # showed up as the largest single cost of a sync.
        self._shown: dict[str, Sequence[Cell]] = {}  # row key -> cells last written by sync, its only writer
        self._row_data: dict[str, dict] = {}  # row key -> DataTable's own dict of that row's cells
        self._repaint: set[str] | None = None  # during sync: rows to repaint at its end
        # Called in the same turn as a cursor move, before RowHighlighted (a message) arrives:
        # what depends on the cursor row can then be painted in the same frame as the cursor.
        self.cursor_moved: Callable[[], None] | None = None
        self._projection: tuple[int, ...] | None = None  # indexes into COLUMNS shown; None: all
        for key, label, width in self.COLUMNS:
            self.add_column(label, key=key, width=width)

    @property
    def shown_columns(self) -> tuple[str, ...]:
        return tuple(self._column_keys)

    def show_columns(self, keys: Sequence[str]) -> None:
        """Show only these of COLUMNS, in COLUMNS order. The rows go: the caller syncs them again,
        each passed through project() (rows are built with every column, then cut to these)."""
        wanted = [(index, column) for index, column in enumerate(self.COLUMNS) if column[0] in keys]
        if not wanted:
            raise ValueError("a table needs at least one column")
        if [column[0] for _, column in wanted] == self._column_keys:
            return
        self.clear(columns=True)
        self._column_keys = [key for _, (key, _, _) in wanted]
        self._column_objs = [ColumnKey(key) for key in self._column_keys]
        self._auto_width = {key for _, (key, _, width) in wanted if width is None}
        self._projection = None if len(wanted) == len(self.COLUMNS) else tuple(index for index, _ in wanted)
        for _, (key, label, width) in wanted:
            self.add_column(label, key=key, width=width)
        if self.sort_column not in self._column_keys:
            self.sort_column = None

    def project(self, cells: Sequence[Cell]) -> Sequence[Cell]:
        """A full row's cells cut to the columns shown."""
        projection = self._projection
        return cells if projection is None else tuple(cells[index] for index in projection)

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
        gone = shown.keys() - wanted.keys()
        if gone:
            self._remove_rows(gone)
            for key in gone:
                del shown[key]
                del self._row_data[key]
                self._stale.pop(key, None)
            changed = True
        column_keys = self._column_keys
        auto_width = self._auto_width
        self._repaint = set()
        try:
            for key, cells in rows:
                previous = shown.get(key)
                if previous is not None:
                    # Compared against what sync last wrote, not DataTable.get_cell (a lookup through
                    # RowKey/ColumnKey objects, ~30 ms a refresh at 2000 domains). A row object the
                    # caller reused unchanged is skipped without looking at its cells, and so is a
                    # cell that is the very object shown.
                    if cells is previous:
                        continue
                    writes = None
                    for index, (cell, old) in enumerate(zip(cells, previous, strict=True)):
                        if old is not cell and old != cell:
                            column = column_keys[index]
                            if column in auto_width:
                                self.update_cell(key, column, cell, update_width=True)
                            else:
                                writes = writes or []
                                writes.append((index, cell, old))
                            changed = True
                            resort = resort or column == self.sort_column
                    if writes:
                        self._write_cells(key, writes)
                else:
                    row_key = self.add_row(*cells, key=key)
                    if not auto_width:
                        # DataTable measures every cell of a new row (~20 µs each, most of it
                        # console.options) though only auto-width columns use the result: without
                        # any, clearing a filter that brought back 1800 rows spent ~0.4 s there.
                        # The row is still counted in the table's height (_update_dimensions runs).
                        self._new_rows.discard(row_key)
                    self._row_data[key] = self._data[row_key]
                    changed = True
                    resort = True
                shown[key] = cells
        finally:
            repaint, self._repaint = self._repaint, None
            self._repaint_rows(repaint)
        if resort and self.sort_column is not None:
            self._sort_keeping(keep_key)  # the row under the cursor before this sync, if any
        if self.follow_key and keep_key is not None and keep_key in wanted:
            self.move_to_key(keep_key)
        if self._require_update_dimensions and self.is_mounted:
            self._lay_out_now()
        return changed

    def _lay_out_now(self) -> None:
        """Measure the table and ask the screen for its layout now, not on the next idles.

        Rows added or removed change the virtual size: DataTable measures it on its next idle,
        and the layout request reaches the screen on the idle after. The screen's tick came in
        between: a filter keystroke painted the pane, then laid it out and painted it again one
        tick (~30 ms) later, half the keystroke's time at 2000 domains. What DataTable._on_idle
        and Widget._check_refresh would do, done at the end of the sync.
        """
        if self._updated_cells:
            updated, self._updated_cells = set(self._updated_cells), set()
            self._update_column_widths(updated)
        self._require_update_dimensions = False
        new_rows = self._new_rows.copy()
        self._new_rows.clear()
        self._update_dimensions(new_rows)
        if not self._layout_required:
            return
        self._layout_required = False
        for ancestor in self.ancestors:
            if not isinstance(ancestor, Widget):
                break
            ancestor._clear_arrangement_cache()
            ancestor._layout_updates += 1
            if not ancestor.styles.auto_dimensions:
                break
        self.screen.post_message(messages.Layout(self))

    def _update_column_widths(self, updated_cells: set[CellKey]) -> None:
        """DataTable's, plus dropping renders made at the old widths. DataTable measures written
        auto-width cells lazily (on idle) without invalidating its render caches, so a frame drawn
        between the write and the measurement stayed on screen: a host's new error message kept
        its column at the header's width until something else redrew the table."""
        before = [column.content_width for column in self.columns.values()]
        super()._update_column_widths(updated_cells)
        if [column.content_width for column in self.columns.values()] != before:
            self._update_count += 1
            self._require_update_dimensions = True
            self.refresh()

    def _remove_rows(self, keys: set[str]) -> None:
        """remove_row for many rows at once. DataTable.remove_row renumbers every remaining row,
        so a filter keystroke that hid 1800 of 2000 domains took seconds; this renumbers once and
        leaves the table as that many remove_row calls would (cursor clamped, caches invalidated)."""
        if len(keys) == 1:
            self.remove_row(next(iter(keys)))
            return
        # RowKey hashes and compares in Python: the dicts keyed by it are rebuilt from the rows
        # that stay (hashing those only) rather than looked up and deleted from (a hash and an
        # __eq__ per removed row, 13 ms of the 16 a keystroke that hid 1800 rows took here).
        by_index = self._row_locations._reverse
        survivors = [row_key for row_key in (by_index[index] for index in range(len(by_index)))
                     if row_key.value not in keys]
        self._require_update_dimensions = True
        self.check_idle()
        self._row_locations = TwoWayDict({row_key: index for index, row_key in enumerate(survivors)})
        if self._updated_cells:  # keep removed cells from triggering dimension updates
            self._updated_cells = {cell for cell in self._updated_cells if cell.row_key.value not in keys}
        self.rows = {row_key: row for row_key, row in self.rows.items() if row_key.value not in keys}
        self._data = {row_key: cells for row_key, cells in self._data.items() if row_key.value not in keys}
        self.cursor_coordinate = self.cursor_coordinate
        self.hover_coordinate = self.hover_coordinate
        self._update_count += 1
        self.refresh(layout=True)

    # -- writing only what changed (CellRenderTable renders only that) ----------------------------
    def update_cell(self, row_key: RowKey | str, column_key: ColumnKey | str, value: Any, *,
                    update_width: bool = False) -> None:
        if update_width:  # a column may change width: everything moves, DataTable's way
            super().update_cell(row_key, column_key, value, update_width=True)
            return
        key = row_key.value if isinstance(row_key, RowKey) else row_key
        column = column_key.value if isinstance(column_key, ColumnKey) else column_key
        if key not in self._row_data or column not in self._column_keys:
            super().update_cell(row_key, column_key, value)  # not a row of sync's: DataTable's way
            return
        index = self._column_keys.index(column)
        self._write_cells(key, [(index, value, self._row_data[key][self._column_objs[index]])])
        shown = list(self._shown[key])
        shown[index] = value
        self._shown[key] = tuple(shown)

    def _write_cells(self, key: str, writes: list[tuple[int, Any, Any]]) -> None:
        """Every cell write of a sync, other than to auto-width columns, lands here:
        writes are (column index, new value, old value)."""
        data = self._row_data[key]
        stale = None
        for index, value, old in writes:
            data[self._column_objs[index]] = value
            if (isinstance(value, Cell) and isinstance(old, Cell) and value.text == old.text
                    and value.style == old.style):
                continue  # renders the same: only its sort key moved
            if stale is None:
                stale = self._stale.setdefault(key, set())
            stale.add(self._column_keys[index])
        if stale is None:
            return
        if self._repaint is not None:
            self._repaint.add(key)  # sync repaints once, at its end
        else:
            self._repaint_rows({key})
    def clear(self, columns: bool = False) -> DiffTable:
        self._shown.clear()
        self._row_data.clear()
        self._stale.clear()
        return super().clear(columns)

    def watch_cursor_coordinate(self, old_coordinate: Any, new_coordinate: Any) -> None:
        super().watch_cursor_coordinate(old_coordinate, new_coordinate)
        if old_coordinate != new_coordinate and self.cursor_moved is not None:
            self.cursor_moved()

    def on_key(self) -> None:
        self.follow_key = True

    def on_click(self) -> None:
        self.follow_key = True

    def apply_sort(self) -> None:
        self._sort_keeping(self.highlighted_key)

    def _sort_keeping(self, keep_key: str | None) -> None:
        """Sort, the cursor staying on keep_key's row; None (the table was empty): on the first row."""
        if self.sort_column is None:
            return
        self.sort(self.sort_column, key=sort_value, reverse=self.sort_reverse)
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

"""A DataTable that is updated by diffing, never rebuilt.

Each poll hands the table the rows it should show; only cells whose value
changed are written, rows that appeared are added and rows that went away
are removed. The cursor follows its row key, not its index, so a re-sort
never moves the operator's selection to another domain.

A changed cell re-renders only itself and the line it is on, and only when it
is in view (see update_cell): DataTable itself drops every cached render of the
table on any cell update.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

from rich.cells import cell_len, get_character_cell_size
from rich.console import Console, ConsoleOptions
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import NULL_STYLE, Style
from rich.text import Text
from textual import messages
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import DataTable
from textual.widgets.data_table import CellKey, ColumnKey, RowDoesNotExist, RowKey

from virttui.widgets.compat import TwoWayDict


def _one_cell_per_char(text: str) -> bool:
    """Printable, and every character one terminal cell wide (so slicing crops as Rich would):
    ASCII, and the tree and marker glyphs the panes use (├ └ ★ ▼ …). Each character on its own:
    the total alone is fooled where wide and zero-width ones balance out (NFD Japanese: く + U+3099)."""
    return text.isprintable() and (text.isascii() or (cell_len(text) == len(text)
                                                      and all(get_character_cell_size(ch) == 1 for ch in text)))


class Cell:
    """A table cell: plain text (never parsed as markup), a style, and a sort key."""

    __slots__ = ("text", "style", "sort_key")

    def __init__(self, text: str, style: str = "", sort_key: Any = None) -> None:
        self.text = text
        self.style = style
        self.sort_key = text.casefold() if sort_key is None else sort_key

    def as_text(self) -> Text:
        return Text(self.text, style=self.style, no_wrap=True, overflow="ellipsis", end="")

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        # What as_text() renders to, made directly for the common case (printable text of
        # one-cell characters on one line, cut with an ellipsis): Rich's Text machinery was half the cost
        # of drawing a cell, and DataTable draws every visible cell again after a sort, a filter or a
        # focus change.
        # Checked segment for segment against the Text path over texts, widths and styles.
        text = self.text
        width = options.max_width
        if text and width >= 2 and options.no_wrap and _one_cell_per_char(text):
            if len(text) > width:
                text = text[:width - 1] + "…"
            yield Segment(text, console.get_style(self.style) if self.style else None)
        else:
            yield from self.as_text().__rich_console__(console, options)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return self.as_text().__rich_measure__(console, options)

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
    FOLLOW_FROM_START: ClassVar[bool] = False  # else row 0 until the operator moves the cursor
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
        # Once the operator has moved the cursor (or from the start, with FOLLOW_FROM_START) it
        # follows its row's key, so a re-sort never slides another row under it.
        self.follow_key = self.FOLLOW_FROM_START
        self._column_keys = [key for key, _, _ in self.COLUMNS]
        self._column_objs = [ColumnKey(key) for key in self._column_keys]
        # Keyed by the row key strings: RowKey hashes through Python code, which at 2000 rows
        # showed up as the largest single cost of a sync.
        self._shown: dict[str, Sequence[Cell]] = {}  # row key -> cells last written by sync, its only writer
        self._row_data: dict[str, dict] = {}  # row key -> DataTable's own dict of that row's cells
        self._stale: dict[str, set[str]] = {}  # row key -> columns whose cached renders are to be dropped
        self._repaint: set[str] | None = None  # during sync: rows to repaint at its end
        # Called in the same turn as a cursor move, before RowHighlighted (a message) arrives:
        # what depends on the cursor row can then be painted in the same frame as the cursor.
        self.cursor_moved: Callable[[], None] | None = None
        self._render_styles: dict[Any, tuple] = {}  # pseudo-class state -> styles its cached renders used
        self._projection: tuple[int, ...] | None = None  # indexes into COLUMNS shown; None: all
        self._cell_meta: dict[tuple[int, int], Style] = {}  # (row, column) -> the click metadata style
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

    # -- rendering only what changed ---------------------------------------------------------------
    # DataTable.update_cell bumps _update_count, which is part of the key of every render cache
    # (cells, rows, lines), so one new CPU% anywhere re-rendered every visible cell through Rich
    # (~0.3 ms a cell): at 2000 domains that was most of the UI's time, ~150 ms a frame. Here a cell
    # write drops only that cell's cached render and its row's assembled line (lazily, before the
    # next render) and repaints only that row's region, which is nothing at all when the row is
    # scrolled out of view; a cell whose text and style stay (a new sort key only) repaints nothing.
    # Anything that moves rows (add, remove, sort, resize) still bumps _update_count as before.
    # This leans on DataTable internals of the pinned Textual version (8.2.8).
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

    def _repaint_rows(self, keys: set[str]) -> None:
        """Repaint the regions of those rows that are in view (what DataTable.refresh_row does,
        without its O(rows) sum of row heights: DiffTable rows are one line high)."""
        if not keys:
            return
        window = self.window_region
        width = max(self.size.width, self.virtual_size.width)
        if window.width <= 0 or width <= 0:
            return
        top = self.header_height if self.show_header else 0
        row_at = self._row_locations.get_key
        for index in range(max(0, window.y - top), max(0, min(self.row_count, window.bottom - top))):
            row_key = row_at(index)
            if row_key is not None and row_key.value in keys:
                self.refresh(Region(0, top + index, width, 1).translate(-self.scroll_offset))

    def _drop_stale_renders(self) -> None:
        """Drop the cached renders of written cells and their rows' assembled lines; on the way,
        drop entries of an older _update_count, which can never be hit again (keeping the scans
        short: they are bounded by what was rendered recently, not by the rows that changed)."""
        stale = self._stale
        self._stale = {}
        count = self._update_count
        row_at = self._row_locations.get_key
        top = self.header_height if self.show_header else 0

        def row_stale(row_key: RowKey | None) -> bool:
            return row_key is not None and row_key.value in stale

        caches: tuple[tuple[LRUCache[Any, Any], Callable[[Any], bool]], ...] = (
            # (row_key, column_key, style, cursor, hover, show_hover, update_count, pseudo)
            (self._cell_render_cache,
             lambda key: key[6] != count or (key[1] is not None and key[1].value in stale.get(key[0].value, ()))),
            # (row_key, line_no, style, cursor, hover, cursor_type, show_cursor, show_hover, update_count, pseudo)
            (self._row_render_cache, lambda key: key[8] != count or row_stale(key[0])),
            # (update_count, row_index)
            (self._row_renderable_cache, lambda key: key[0] != count or row_stale(row_at(key[1]))),
            # (y, x1, x2, width, cursor, hover, style, cursor_type, show_hover, update_count, pseudo)
            (self._line_cache, lambda key: key[9] != count or row_stale(row_at(key[0] - top))),
        )
        for cache, dead in caches:
            for key in [key for key in cache.keys() if dead(key)]:
                cache.discard(key)

    def _render_line(self, y: int, x1: int, x2: int, base_style: Any) -> Strip:
        if self._stale:
            self._drop_stale_renders()
        return super()._render_line(y, x1, x2, base_style)

    def _get_row_renderables(self, row_index: int) -> Any:
        if self._stale:
            self._drop_stale_renders()
        return super()._get_row_renderables(row_index)

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> list[list[Segment]]:
        """DataTable's, with the segments of a one-line Cell made directly.

        DataTable renders every cell through Styled(Padding(cell)) and Console.render_lines:
        after a filter keystroke all visible cells are new renders (any row added or removed
        bumps _update_count, which every cached render is keyed by), and that machinery was
        9-25 ms of a keystroke at 160x50. Same cache, same key, same segments (tested against
        DataTable's path over texts, widths, styles, cursor and hover); anything else (header,
        non-Cell values, text needing Rich's full layout) still takes DataTable's path.
        """
        if row_index < 0 or column_index < 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        if row_key is None or column_key is None:  # past the table's end: no Cell, DataTable's path
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        cache_key = (row_key, column_key, base_style, cursor, hover, self._show_hover_cursor, self._update_count,
                     self._pseudo_class_state)
        cached = self._cell_render_cache.get(cache_key)
        if cached is not None:
            return cached
        cell = self._data.get(row_key, {}).get(column_key)
        row = self.rows.get(row_key)
        pad = self.cell_padding
        inner = width - 2 * pad
        if (not isinstance(cell, Cell) or row is None or row.height != 1 or inner < 2 or not cell.text
                or not _one_cell_per_char(cell.text)):
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        component_style, post_style = self._get_styles_to_render_cell(
            False, False, row_index < self.fixed_rows or column_index < self.fixed_columns, hover, cursor,
            self.show_cursor, self._show_hover_cursor, self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css")
        meta = self._cell_meta.get((row_index, column_index))
        if meta is None:  # one Style per position, so Rich's cache of Style sums can hit
            if len(self._cell_meta) > 4096:  # positions seen while scrolling a long table
                self._cell_meta.clear()
            meta = self._cell_meta[row_index, column_index] = Style.from_meta({"row": row_index,
                                                                               "column": column_index})
        pre_style = base_style + meta + component_style

        def styled(style: Style | None) -> Style | None:  # Segment.apply_style(pre, post), one segment
            if pre_style:
                style = pre_style + style
            if post_style:
                style = style + post_style if style else post_style
            return style

        text = cell.text if len(cell.text) <= inner else cell.text[:inner - 1] + "…"
        blank = styled(NULL_STYLE)  # Padding's spaces, and the line's fill
        line = [Segment(" " * pad, blank)] if pad else []
        line.append(Segment(text, styled(self.app.console.get_style(cell.style) if cell.style else None)))
        if len(text) < inner:
            line.append(Segment(" " * (inner - len(text)), blank))
        if pad:
            line.append(Segment(" " * pad, blank))
        lines = [line]
        self._cell_render_cache[cache_key] = lines
        return lines

    def notify_style_update(self) -> None:
        """DataTable's, without dropping cached renders that are still good.

        DataTable drops every cached render on any style update, and a focus change is one
        (DataTable:focus tints the background): each Tab re-rendered all visible cells of the
        pane left and the pane entered, ~25 ms for Domains at 160x50. Cached renders are keyed
        by the pseudo-class state (focus) and the base style, but not by the component styles
        (cursor, header...); they stay good as long as, for each state, those are what they were
        when its renders were made. A state not seen since the caches were last dropped has no
        renders in them yet.
        """
        super(DataTable, self).notify_style_update()  # Widget's: its own style caches
        state = self.get_pseudo_class_state()
        try:
            styles = (self.rich_style, self.background_colors,
                      tuple(self.get_component_rich_style(name) for name in sorted(self.COMPONENT_CLASSES)))
        except KeyError:  # component styles not applied yet (mounting)
            styles = None
        seen = self._render_styles.get(state)
        if styles is None or (seen is not None and seen != styles):  # a theme or stylesheet change
            self._render_styles = {}
            self._row_render_cache.clear()
            self._cell_render_cache.clear()
            self._line_cache.clear()
        if styles is not None:
            self._render_styles[state] = styles
        self._row_renderable_cache.clear()
        self._styles_cache.clear()
        self._get_styles_to_render_cell.cache_clear()
        self.refresh()

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

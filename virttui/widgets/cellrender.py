"""A DataTable that re-renders only the cells written, and only those in view.

DataTable.update_cell bumps _update_count, which is part of the key of every render cache
(cells, rows, lines), so one new CPU% anywhere re-rendered every visible cell through Rich
(~0.3 ms a cell): at 2000 domains that was most of the UI's time, ~150 ms a frame. Here a cell
write drops only that cell's cached render and its row's assembled line (lazily, before the
next render) and repaints only that row's region, which is nothing at all when the row is
scrolled out of view; a cell whose text and style stay (a new sort key only) repaints nothing.
Anything that moves rows (add, remove, sort, resize) still bumps _update_count as before.
This leans on DataTable internals of the pinned Textual version (8.2.8).

A writer (DiffTable) records what it wrote in `_stale` (row key -> columns) and calls
_repaint_rows; one-line Cells are rendered directly, to the segments DataTable would make.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.segment import Segment
from rich.style import NULL_STYLE, Style
from textual.cache import LRUCache
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from virttui.widgets.cells import Cell, one_cell_per_char


class CellRenderTable(DataTable):
    """DataTable, its cached renders dropped cell by cell (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stale: dict[str, set[str]] = {}  # row key -> columns whose cached renders are to be dropped
        self._render_styles: dict[Any, tuple] = {}  # pseudo-class state -> styles its cached renders used
        self._cell_meta: dict[tuple[int, int], Style] = {}  # (row, column) -> the click metadata style

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
                or not one_cell_per_char(cell.text)):
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

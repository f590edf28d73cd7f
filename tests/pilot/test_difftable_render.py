"""DiffTable draws cells its own quick way; what it draws must be what DataTable would draw.

Both short cuts (Cell.__rich_console__ and DiffTable._render_cell) exist for speed only, so
each is checked segment for segment against the Rich/DataTable path it stands in for.
"""

from __future__ import annotations

import pytest
from rich.console import Console
from rich.style import Style
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from virttui.widgets.cells import Cell
from virttui.widgets.difftable import DiffTable

TEXTS = ["web-01", "x" * 40, "a", "running", "ünïcode", "tab\there", "", " lead and trail ", "日本語",
         "├ hv2", "└ hv3-with-a-long-name", "★ all", "▼ rack-a", "…ges/backup.qcow2", "µs", "a日b", "e\u0301",
         "\u304f\u3099" * 12]  # NFD Japanese: a wide character and a zero-width mark, as many cells as characters
STYLES = ["", "bold", "red on blue", "dim italic", "reverse"]


class Table(DiffTable):
    COLUMNS = (("name", "Name", None), ("state", "State", 8), ("cpu", "CPU", 3))


class TableApp(App):
    def compose(self) -> ComposeResult:
        yield Table(id="table")


@pytest.mark.parametrize("width", [1, 2, 3, 5, 8, 20, 60])
def test_cell_renders_what_its_text_renders(width):
    console = Console(width=80, color_system="truecolor")
    for text in TEXTS:
        for style in STYLES:
            cell = Cell(text, style)
            options = console.options.update(width=width, no_wrap=True, height=1)
            quick = list(console.render(cell, options))
            slow = list(console.render(cell.as_text(), options))
            assert quick == slow, (text, style, width)


async def test_cells_render_as_datatable_renders_them():
    app = TableApp()
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.query_one(Table)
        rows = []
        for index, text in enumerate(TEXTS):
            style = STYLES[index % len(STYLES)]
            rows.append((f"row{index}", [Cell(text, style), Cell(text[::-1], STYLES[-1 - index % len(STYLES)]),
                                         Cell(str(index), "bold")]))
        table.sync(rows)
        await pilot.pause()
        bases = [Style(), table.rich_style, Style(bgcolor="blue", italic=True)]
        checked = 0
        for focused in (False, True):
            if focused:
                table.focus()
                await pilot.pause()
            for row_index in range(table.row_count):
                for column_index in range(len(table.columns)):
                    for width in (1, 3, 4, 5, 9, 30):
                        for cursor in (False, True):
                            for hover in (False, True):
                                base = bases[(row_index + column_index) % len(bases)]
                                table._cell_render_cache.clear()
                                quick = table._render_cell(row_index, column_index, base, width, cursor, hover)
                                table._cell_render_cache.clear()
                                slow = DataTable._render_cell(table, row_index, column_index, base, width,
                                                              cursor, hover)
                                assert quick == slow, (row_index, column_index, width, cursor, hover)
                                checked += 1
        assert checked == 2 * len(TEXTS) * 3 * 6 * 4


async def test_a_quick_render_is_cached_and_dropped_when_the_cell_changes():
    app = TableApp()
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.query_one(Table)
        table.sync([("a", [Cell("one"), Cell("up"), Cell("1")])])
        await pilot.pause()
        first = table._render_cell(0, 0, Style(), 10)
        assert table._render_cell(0, 0, Style(), 10) is first
        table.sync([("a", [Cell("two"), Cell("up"), Cell("1")])])
        await pilot.pause()
        again = table._render_cell(0, 0, Style(), 10)
        assert "two" in "".join(segment.text for segment in again[0])

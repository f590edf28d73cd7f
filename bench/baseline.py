"""The same-run baseline for the key and refresh figures: a minimal Textual app, as a plain DataTable
app would be written, holding the console's own Domains rows and columns.

It has one DataTable with those rows, an Input that filters it (rebuilding the table from the rows
whose name holds the text, the plain DataTable way), and a small second table to Tab to. It runs
headless at the console's size in the same process, watched by the same PaintProbe, so every
figure here is timed exactly as the console's is. The machine's speed of the day is in both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Input

from bench.probe import PaintProbe

Rows = Sequence[Sequence[str]]


class MinimalTableApp(App[None]):
    CSS = """
    #rows { height: 1fr; }
    #other { height: 6; }
    #filter { display: none; }
    #filter.open { display: block; }
    """
    BINDINGS = [Binding("slash", "open_filter", "Filter"), Binding("escape", "clear_filter", "Clear")]

    def __init__(self, columns: Sequence[str], rows: Rows) -> None:
        super().__init__()
        self.column_names = list(columns)
        self.all_rows = [tuple(row) for row in rows]
        self.filter_text = ""

    def compose(self) -> ComposeResult:
        yield Input(id="filter")
        yield DataTable(id="rows")
        yield DataTable(id="other")

    def on_mount(self) -> None:
        table = self.query_one("#rows", DataTable)
        table.add_columns(*self.column_names)
        table.add_rows(self.all_rows)
        other = self.query_one("#other", DataTable)
        other.add_columns("host", "state")
        other.add_rows([(f"hv{index:02d}", "connected") for index in range(20)])
        table.focus()

    def action_open_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("open")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        with box.prevent(Input.Changed):
            box.value = ""
        box.remove_class("open")
        self._fill("")
        self.query_one("#rows", DataTable).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self._fill(event.value)

    def _fill(self, text: str) -> None:
        self.filter_text = text
        table = self.query_one("#rows", DataTable)
        table.clear()
        table.add_rows(row for row in self.all_rows if text in row[0])


def _cursor_at(table: DataTable[Any], row: int) -> bool:
    return table.cursor_row == row


def _filtered(app: MinimalTableApp, text: str) -> bool:
    return app.filter_text == text


def _focus_moved(app: App, before: object) -> bool:
    return app.focused is not before


KEY_CHARS = {"down": None, "tab": "\t", "slash": "/", "escape": "\x1b"}


async def _press(app: App, probe: PaintProbe, key: str, done: Callable[[], bool]) -> float:
    """Seconds from the key posted (as the terminal driver posts it) to the settled frame."""
    from textual import events

    event = events.Key(key, KEY_CHARS.get(key, key if len(key) == 1 else None))
    event.set_sender(app)
    started = time.perf_counter()
    app.post_message(event)
    ended = await probe.painted_when(done)
    await asyncio.sleep(0.03)  # a fast typist, as the console's figures are taken
    return ended - started


async def measure_keys(columns: Sequence[str], rows: Rows, *, size: tuple[int, int], repeat: int,
                       words: Sequence[str]) -> dict[str, list[float]]:
    """The minimal app's cursor move, filter keystroke, Esc (clear the filter) and Tab, `repeat` of each."""
    app = MinimalTableApp(columns, rows)
    out: dict[str, list[float]] = {}
    async with app.run_test(size=size):
        probe = PaintProbe(app)
        table = app.query_one("#rows", DataTable)
        await probe.painted_when(lambda: table.row_count == len(rows))

        def record(kind: str, seconds: float) -> None:
            out.setdefault(kind, []).append(seconds)

        for _ in range(repeat):
            record("cursor", await _press(app, probe, "down", partial(_cursor_at, table, table.cursor_row + 1)))

        box = app.query_one("#filter", Input)
        index = 0
        while len(out.get("filter", ())) < repeat:
            word = words[index % len(words)]
            index += 1
            record("open filter", await _press(app, probe, "slash", lambda: app.focused is box))
            for end in range(1, len(word) + 1):
                record("filter", await _press(app, probe, word[end - 1], partial(_filtered, app, word[:end])))
            record("clear filter", await _press(
                app, probe, "escape", lambda: app.focused is table and table.row_count == len(rows)))

        for _ in range(repeat):
            record("tab", await _press(app, probe, "tab", partial(_focus_moved, app, app.focused)))
    return out


async def measure_refresh(columns: Sequence[str], rows: Rows, *, size: tuple[int, int], repeat: int,
                          cells: int) -> list[float]:
    """Seconds from writing `cells` new values into the minimal app's table to the settled frame."""
    app = MinimalTableApp(columns, rows)
    async with app.run_test(size=size):
        probe = PaintProbe(app)
        table = app.query_one("#rows", DataTable)
        await probe.painted_when(lambda: table.row_count == len(rows))
        return await _refreshes(probe, table, cells, repeat)


async def _refreshes(probe: PaintProbe, table: DataTable[Any], cells: int, repeat: int) -> list[float]:
    """Seconds from writing `cells` new values (spread over every row, as a poll's counters are) to the
    settled frame."""
    rows = list(table.rows)
    columns = list(table.columns)[1:] or list(table.columns)
    targets = [(rows[index % len(rows)], columns[(index // len(rows)) % len(columns)]) for index in range(cells)]
    samples = []
    for round_ in range(repeat):
        started = time.perf_counter()
        for row_key, column_key in targets:
            table.update_cell(row_key, column_key, f"{round_ % 100}.{len(targets) % 10}")
        samples.append(await probe.painted_when(lambda: True) - started)
        await asyncio.sleep(0.2)  # as the console's refreshes are spaced
    return samples

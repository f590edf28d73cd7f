"""Watching a running console from inside its process: polls handled, frames painted (and encoded as a
terminal would receive them), table writes, and "settled": the last frame before the UI is quiet."""

from __future__ import annotations

import asyncio
import resource
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bench.stats import status_kib

if TYPE_CHECKING:
    from textual.app import App

    from virttui.console.app import VirtTUI

# -- instrumentation ---------------------------------------------------------------------------------
def rss_mib() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MiB."""
    values = status_kib("VmRSS", "VmHWM")
    return values.get("VmRSS", 0) / 1024, values.get("VmHWM", 0) / 1024


TABLE_METHODS = ("add_row", "remove_row", "clear", "sort", "add_column")  # counted as calls


class PaintProbe:
    """Watches any running Textual app: frames painted (encoded as a terminal would receive them),
    and when the UI settles after a change."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.paints = 0
        self.paint_time = 0.0  # seconds spent in App._display (compositor frame + terminal encoding)
        self.last_paint = 0.0
        self.unsettled = 0  # waits that hit painted_when's timeout
        self.first_frame: float | None = None  # set by painted_when
        self._waiter: Callable[[], bool] | None = None  # painted_when's done()
        self._wrap_display()

    def _wrap_display(self) -> None:
        from textual._compositor import CompositorUpdate

        app = self.app
        display = app._display

        def wrapped_display(screen: Any, renderable: Any) -> None:
            started = time.perf_counter()
            display(screen, renderable)
            if renderable is not None and app.is_headless and isinstance(renderable, CompositorUpdate):
                renderable.render_segments(app.console)  # what a terminal driver would write
            now = time.perf_counter()
            self.paints += 1
            self.paint_time += now - started
            self.last_paint = now
            self._check(now)

        app._display = wrapped_display  # type: ignore[method-assign]

    # -- waiting for a painted frame -------------------------------------------------------------------
    def quiet(self) -> bool:
        """No message waiting anywhere on the screen, no widget waiting to be repainted or laid
        out, and no frame the screen has still to make."""
        app = self.app
        screen = app.screen
        if not app._message_queue.empty() or not screen._message_queue.empty():
            return False
        if (screen._dirty_widgets or screen._layout_required or screen._repaint_required
                or screen._scroll_required or screen._recompose_required):
            return False
        for widget in screen.walk_children():
            if not widget._message_queue.empty() or widget._repaint_required or widget._layout_required:
                return False
        return True

    def _check(self, now: float) -> None:
        if self._waiter is None:
            return
        if self.first_frame is None and self._waiter():
            self.first_frame = now  # the first frame showing the change, maybe not all of it

    async def painted_when(self, done: Callable[[], bool], timeout: float = 10.0) -> float:
        """perf_counter() at the end of the last frame painted before the UI was seen settled:
        done() holds and nothing waits to be handled, laid out or painted (see quiet()).

        The moment it was seen settled if no frame was painted since the call (nothing visible
        changed). Settled is looked for every 2 ms, and the time is the frame's, so a frame made
        after the change was complete (the next poll's) is not counted. Until 2026-11-26 this
        waited for the first frame after which nothing was pending, which counted the next
        unrelated frame whenever a widget's already-painted repaint request was still in flight.
        """
        self._waiter = done  # _check() notes the first frame that shows the change
        self.first_frame = None
        started = time.perf_counter()
        deadline = started + timeout
        try:
            while True:
                await asyncio.sleep(0.002)
                now = time.perf_counter()
                if done() and self.quiet():
                    return self.last_paint if self.last_paint > started else now
                if now > deadline:  # a saturated UI never settles: count it, report the wait
                    self.unsettled += 1
                    return now
        finally:
            self._waiter = None


class Probe(PaintProbe):
    """Watches a running VirtTUI: polls handled, frames painted, table writes."""

    def __init__(self, app: VirtTUI) -> None:
        super().__init__(app)
        self.app: VirtTUI = app
        self.handled: dict[str, int] = {}  # host uri -> seq of the last poll result handled
        self.polls_handled = 0
        self.broadcasts = 0
        self.ops: Counter[tuple[str, str]] = Counter()
        self.redundant_writes = 0
        self._wrap_scheduler()

    # poll results: scheduler.finished runs on the UI thread when a HostPolled/HostFailed is handled
    def _wrap_scheduler(self) -> None:
        scheduler = self.app.scheduler
        finished = scheduler.finished
        broadcast = self.app.broadcast_fleet

        def wrapped_finished(uri: str, ok: bool) -> float | None:
            self.handled[uri] = scheduler.next_seq(uri) - 1
            self.polls_handled += 1
            return finished(uri, ok)

        def wrapped_broadcast() -> None:
            self.broadcasts += 1
            broadcast()

        scheduler.finished = wrapped_finished  # type: ignore[method-assign]
        self.app.broadcast_fleet = wrapped_broadcast  # type: ignore[method-assign]

    def watch_tables(self) -> None:
        """Count what the panes do: DataTable calls that rebuild or move rows, cells written (all
        go through DiffTable._write_cells, or update_cell for auto-width columns) and cells
        rendered through Rich (a miss of DataTable's cell render cache)."""
        from textual.cache import LRUCache

        from virttui.widgets.difftable import DiffTable

        probe = self

        class CountingCache(LRUCache):
            def __setitem__(self, key: Any, value: Any) -> None:
                probe.ops[("*", "cell rendered")] += 1
                self.set(key, value)

        for table in self.app.screen.query(DiffTable):
            for method in TABLE_METHODS:
                self._wrap_table(table, method)
            self._wrap_writes(table)
            counting = CountingCache(table._cell_render_cache.maxsize)
            table._cell_render_cache = counting

    def _wrap_table(self, table: Any, method: str) -> None:
        original = getattr(table, method)
        name = table.id or type(table).__name__

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self.ops[(name, method)] += 1
            return original(*args, **kwargs)

        setattr(table, method, wrapped)

    def _wrap_writes(self, table: Any) -> None:
        write_cells: Callable[[str, list[tuple[int, Any, Any]]], None] | None = getattr(table, "_write_cells", None)
        update_cell = table.update_cell
        name = table.id or type(table).__name__
        direct = write_cells is None  # a DiffTable whose every write is an update_cell

        def wrapped_write(key: str, writes: list[tuple[int, Any, Any]]) -> None:
            self.ops[(name, "cell written")] += len(writes)
            self.redundant_writes += sum(1 for _, new, old in writes if new == old)
            assert write_cells is not None  # installed only where the table has it
            write_cells(key, writes)

        def wrapped_update(row_key: Any, column_key: Any, value: Any, *, update_width: bool = False) -> None:
            if update_width or direct:  # other cell writes reach _write_cells, counted there
                self.ops[(name, "cell written")] += 1
                if table.get_cell(row_key, column_key) == value:
                    self.redundant_writes += 1
            update_cell(row_key, column_key, value, update_width=update_width)

        if not direct:
            table._write_cells = wrapped_write
        table.update_cell = wrapped_update


def all_polled(probe: Probe, targets: dict[str, int]) -> Callable[[], bool]:
    def done() -> bool:
        return all(probe.handled.get(uri, 0) >= seq for uri, seq in targets.items())

    return done


async def warm_up(app: VirtTUI, probe: Probe, polls: int = 2, timeout: float = 120.0) -> None:
    """Until every host answered `polls` times (so rates exist) and the screen settled."""
    deadline = time.perf_counter() + timeout
    uris = app.fleet.uris
    while True:
        counts = [probe.handled.get(uri, 0) for uri in uris]
        if min(counts) >= polls:
            break
        if time.perf_counter() > deadline:
            raise TimeoutError(f"hosts did not poll: {counts}")
        await asyncio.sleep(0.05)
    await probe.painted_when(lambda: True)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def negated(check: Callable[[], bool]) -> Callable[[], bool]:
    return lambda: not check()


def domain_rows(domains: Any) -> tuple[list[str], list[list[str]]]:
    """The Domains pane's column labels and rows, as plain text: what the minimal app is given."""
    columns = [column.label.plain for column in domains.ordered_columns]
    rows = [[_cell_text(cell) for cell in domains.get_row_at(index)]
            for index in range(domains.row_count)]
    return columns, rows


def _cell_text(cell: Any) -> str:
    """A cell as the operator reads it: virttui's Cell (its text), a Rich Text (plain), or text."""
    for attribute in ("text", "plain"):
        value = getattr(cell, attribute, None)
        if isinstance(value, str):
            return value
    return str(cell)

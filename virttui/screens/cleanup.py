"""Lease cleanup: preview the files, confirm, watch the progress, read a result per file.

Only the previewed files are attempted, and each one is removed only while
this host can take its lease: a lease acquired elsewhere after the preview
is kept and reported, never deleted.
"""

from __future__ import annotations

import time

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DataTable, Label, ProgressBar

from virttui.assets import styles
from virttui.console.workers import WorkResult, run_blocking
from virttui.locks.model import CleanupOutcome, LeaseStatus
from virttui.runtime.crash import contained
from virttui.screens.dialog import Dialog
from virttui.widgets.difftable import Cell
from virttui.widgets.panes import LEASE_STYLES


class CleanupProgress(Message):
    """Outcomes of files the running cleanup has tried, in a batch."""

    def __init__(self, outcomes: list[CleanupOutcome]) -> None:
        super().__init__()
        self.outcomes = outcomes


class CleanupEnded(WorkResult[int]):
    """The cleanup ended: how many files it removed, or the error that stopped it part way."""


STATE_WIDTH, RESULT_WIDTH = 8, 24  # the Lease and Disk columns share what is left of the width
DISK_WIDTH = 20  # at least, before the lease name gets more than its first characters
CLEANUP_WIDTH = 100  # as #cleanup in the stylesheet
CLEANUP_FRAME = 4 + 2 + 8  # the dialog's border and padding, two scrollbars, the cells' padding


def column_widths(screen_width: int, longest_name: int) -> dict[str, int]:
    """The table's column widths that fit the dialog on a screen this wide: never a sideways scroll."""
    room = min(CLEANUP_WIDTH, screen_width) - CLEANUP_FRAME - STATE_WIDTH - RESULT_WIDTH
    lease = max(12, min(longest_name, room - DISK_WIDTH))
    return {"name": lease, "state": STATE_WIDTH, "disk": max(12, room - lease), "result": RESULT_WIDTH}


class CleanupScreen(Dialog[int]):
    """Dismisses with the number of files removed. Its buttons follow its state: Remove and Cancel while
    there is something to remove, Close alone once it ran or when there is nothing. y removes, Enter
    presses the first button, n and Escape close; ↑ ↓ pick the file spelled out in full below the table."""

    DEFAULT_CSS = styles("cleanup.tcss")

    BINDINGS = [
        Binding("escape,n", "close", "Close"),
        Binding("y", "confirm", "Remove", show=False),
        Binding("enter", "press_default", "Default", show=False),
        Binding("down", "cursor(1)", "Next file", show=False),
        Binding("up", "cursor(-1)", "Previous file", show=False),
    ]

    def __init__(self, manager, host_label: str, candidates: list[LeaseStatus]) -> None:  # noqa: ANN001
        super().__init__()
        self.manager = manager
        self.host_label = host_label
        self.candidates = candidates
        self.removed = 0
        self.removed_so_far = 0  # counted as outcomes arrive: what a failed run did remove
        self._batch: list[CleanupOutcome] = []  # outcomes the worker has not handed to the UI yet
        self._handed_at = 0.0
        self.running = False
        self.done = False
        self._results = {status.name: Cell("pending", "dim") for status in candidates}
        self._widths: dict[str, int] = {}

    def compose(self) -> ComposeResult:
        count = len(self.candidates)
        with Vertical(id="cleanup"):
            yield Label(
                f"Lease cleanup on {self.host_label} · {self.manager.directory}",
                id="cleanup-title",
                markup=False,
            )
            if count:
                text = (f"{count} unused lease file{'s' if count != 1 else ''} would be removed. "
                        "Each is removed only if its lease can be taken now.")
            else:
                text = "No unused lease files: nothing to remove."
            yield Label(text, id="cleanup-summary", markup=False)
            if count:  # nothing to list, nothing to spell out
                yield DataTable(id="cleanup-files", cursor_type="row")
                yield Label("", id="cleanup-detail", markup=False)
            yield ProgressBar(total=max(count, 1), show_eta=False, id="cleanup-progress")
            with Horizontal(id="cleanup-buttons"):
                if count:
                    yield Button(f"Remove {count} file{'s' if count != 1 else ''} (y)", variant="error",
                                 id="confirm")
                    yield Button("Cancel (n)", variant="primary", id="cancel")
                else:
                    yield Button("Close (Esc)", variant="primary", id="cancel")

    def on_mount(self) -> None:
        self._fill_table(self.app.size.width)
        self.query_one("#cleanup-buttons Button", Button).focus()

    def on_resize(self, event: events.Resize) -> None:
        self._fill_table(event.size.width)

    def _table(self) -> DataTable | None:
        """The files' table: there is none when nothing can be removed."""
        return next(self.query("#cleanup-files").results(DataTable), None)

    def _fill_table(self, screen_width: int) -> None:
        """The rows again, in columns as wide as this screen allows (a dialog never scrolls sideways)."""
        widths = column_widths(screen_width, max((len(s.name) for s in self.candidates), default=12))
        table = self._table()
        if table is None or widths == self._widths:
            return
        self._widths = widths
        row = table.cursor_row
        table.clear(columns=True)
        for key, label in (("name", "Lease"), ("state", "State"), ("disk", "Disk"), ("result", "Result")):
            table.add_column(label, key=key, width=widths[key])
        for status in self.candidates:
            table.add_row(Cell(status.name), Cell(status.state.value, LEASE_STYLES[status.state]),
                          Cell(status.disk or "(no known disk)"), self._results[status.name], key=status.name)
        table.move_cursor(row=max(0, min(row, len(self.candidates) - 1)))
        self._show_detail()

    def _show_detail(self) -> None:
        """The file under the cursor in full: its name, disk and result may be cut in the table."""
        table = self._table()
        if table is None or not 0 <= table.cursor_row < len(self.candidates):
            return
        status = self.candidates[table.cursor_row]
        self.query_one("#cleanup-detail", Label).update(
            f"{status.name} · {status.disk or '(no known disk)'} · {self._results[status.name].text}")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def action_cursor(self, step: int) -> None:
        table = self._table()
        if table is not None:
            table.move_cursor(row=max(0, min(len(self.candidates) - 1, table.cursor_row + step)))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm":
            self.action_confirm()
        else:
            self.action_close()

    def action_press_default(self) -> None:
        """Enter when no button has the focus: the first button, Remove or else Close."""
        buttons = self.query("#cleanup-buttons Button").results(Button)
        first = next(buttons, None)
        if first is not None:
            first.press()

    def action_confirm(self) -> None:
        if self.running or self.done or not self.candidates:
            return
        self.running = True
        self.query_one("#confirm", Button).remove()  # once started, never offered again
        cancel = self.query_one("#cancel", Button)
        cancel.label = "Close (Esc)"
        cancel.disabled = True
        self.query_one("#cleanup-summary", Label).update("Removing…")
        self.query_one(ProgressBar).add_class("-running")
        self.run_cleanup([status.name for status in self.candidates])

    def run_cleanup(self, names: list[str]) -> None:
        """File I/O on a lease directory (often NFS) stays off the UI thread."""

        def clean() -> int:
            try:
                report = self.manager.cleanup(names, progress=self._progress_from_thread)
                missing = set(names) - {o.name for o in report.outcomes}
                self._batch.extend(CleanupOutcome(name, "", False, "vanished") for name in sorted(missing))
                return len(report.removed)
            finally:
                self._hand_over()  # what was done is shown and counted first, even when it failed

        run_blocking(self, clean, CleanupEnded, name="run_cleanup", group="lease-cleanup", exclusive=True)

    @contained
    def on_cleanup_ended(self, message: CleanupEnded) -> None:
        exc = message.error
        if exc is None:
            self._finish(message.value or 0, "")
        else:  # a lost host, no python3, a refusal: always end the dialog
            self._fail(" ".join((getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).split()))

    def _progress_from_thread(self, index: int, total: int, outcome: CleanupOutcome) -> None:
        """Outcomes go to the UI in batches a tenth of a second apart, one CleanupProgress message each:
        handing each over on its own (it waited for the UI thread then) paced a cleanup of a thousand
        files by the screen."""
        self._batch.append(outcome)
        if time.monotonic() - self._handed_at >= 0.1:
            self._hand_over()

    def _hand_over(self) -> None:
        batch, self._batch = self._batch, []
        self._handed_at = time.monotonic()
        if batch:
            self.post_message(CleanupProgress(batch))

    @contained
    def on_cleanup_progress(self, message: CleanupProgress) -> None:
        self._show_outcomes(message.outcomes)

    def _show_outcomes(self, outcomes: list[CleanupOutcome]) -> None:
        table = self.query_one("#cleanup-files", DataTable)
        shown = {key.value for key in table.rows}
        for outcome in outcomes:
            self.removed_so_far += outcome.removed
            result = Cell("PASS removed", "green") if outcome.removed else Cell(f"FAIL kept: {outcome.reason}", "red")
            if outcome.name in shown:
                self._results[outcome.name] = result
                table.update_cell(outcome.name, "result", result)
        self.query_one(ProgressBar).advance(len(outcomes))
        self._show_detail()

    def _fail(self, why: str) -> None:
        """The cleanup stopped part way: what was removed stays removed, and is counted."""
        removed = self.removed_so_far
        self._finish(removed, f"Cleanup stopped after removing {removed} file{'s' if removed != 1 else ''}: {why}")

    def _finish(self, removed: int, error: str) -> None:
        self.running = False
        self.done = True
        self.removed = removed
        kept = len(self.candidates) - removed
        summary = error or f"Done: {removed} removed, {kept} kept."
        self.query_one("#cleanup-summary", Label).update(summary)
        cancel = self.query_one("#cancel", Button)
        cancel.label = "Close (Esc)"
        cancel.disabled = False
        cancel.focus()

    def action_close(self) -> None:
        if not self.running:
            self.dismiss(self.removed)

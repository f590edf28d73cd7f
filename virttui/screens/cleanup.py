"""Lease cleanup: preview the files, confirm, watch the progress, read a result per file.

Only the previewed files are attempted, and each one is removed only while
this host can take its lease: a lease acquired elsewhere after the preview
is kept and reported, never deleted.
"""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Label, ProgressBar

from virttui.console.workers import WorkResult, run_blocking
from virttui.locks.model import CleanupOutcome, LeaseStatus
from virttui.runtime.crash import contained
from virttui.widgets.difftable import Cell
from virttui.widgets.panes import LEASE_STYLES


class CleanupProgress(Message):
    """Outcomes of files the running cleanup has tried, in a batch."""

    def __init__(self, outcomes: list[CleanupOutcome]) -> None:
        super().__init__()
        self.outcomes = outcomes


class CleanupEnded(WorkResult[int]):
    """The cleanup ended: how many files it removed, or the error that stopped it part way."""


class CleanupScreen(ModalScreen[int]):
    """Dismisses with the number of files removed."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("y", "confirm", "Remove", show=False),
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
            table: DataTable = DataTable(id="cleanup-files", cursor_type="row")
            table.add_column("Lease", key="name", width=32)
            table.add_column("State", key="state", width=8)
            table.add_column("Disk", key="disk", width=30)
            table.add_column("Result", key="result", width=26)
            for status in self.candidates:
                table.add_row(
                    Cell(status.name),
                    Cell(status.state.value, LEASE_STYLES[status.state]),
                    Cell(status.disk or "(no known disk)"),
                    Cell("pending", "dim"),
                    key=status.name,
                )
            yield table
            yield ProgressBar(total=max(count, 1), show_eta=False, id="cleanup-progress")
            with Horizontal(id="cleanup-buttons"):
                yield Button(f"Remove {count} file{'s' if count != 1 else ''} (y)", variant="error",
                             id="confirm", disabled=not count)
                yield Button("Cancel (Esc)", variant="primary", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm":
            self.action_confirm()
        else:
            self.action_close()

    def action_confirm(self) -> None:
        if self.running or self.done or not self.candidates:
            return
        self.running = True
        self.query_one("#confirm", Button).disabled = True
        self.query_one("#cancel", Button).disabled = True
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
                table.update_cell(outcome.name, "result", result)
        self.query_one(ProgressBar).advance(len(outcomes))

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

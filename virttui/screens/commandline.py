"""`:` on the main screen: a k9s-style command line, one line at the bottom, with completion."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label


class CommandLineScreen(ModalScreen[str | None]):
    """Returns the line typed (Enter), or None (Esc). Tab or → completes from `completions`."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("tab", "complete", "Complete", show=False)]

    def __init__(self, completions: Sequence[str]) -> None:
        super().__init__()
        self._completions = list(completions)

    def compose(self) -> ComposeResult:
        yield Label("host NAME · filter TEXT · sort COLUMN · leases · disks · hosts · an action (start, reboot…) · "
                    "Tab completes, Enter runs, Esc closes", id="command-help", markup=False)
        line = Input(placeholder=":", id="command-line",
                     suggester=SuggestFromList(self._completions, case_sensitive=False))
        line.cursor_blink = not self.app.is_headless  # a blinking cursor would make snapshots flaky
        yield line

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def action_complete(self) -> None:
        self.query_one(Input).action_cursor_right()  # at the end of the line: takes the suggestion

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

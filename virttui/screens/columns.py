"""Choose the Domains pane's columns: a checklist, remembered in the config file."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Label

from virttui.assets import styles
from virttui.screens.dialog import Dialog
from virttui.widgets.checkbox import TickBox


class ColumnsScreen(Dialog[tuple[str, ...] | None]):
    """A [x] / [ ] box per column: ↑ ↓ move, Space ticks; Enter or y applies, Esc or n cancels.
    Returns the chosen column keys in table order, or None on cancel."""

    DEFAULT_CSS = styles("columns.tcss")

    BINDINGS = [
        Binding("enter,y", "apply", "Apply"),
        Binding("escape,n", "cancel", "Cancel"),
        Binding("down,j", "move(1)", "Next", show=False),
        Binding("up,k", "move(-1)", "Previous", show=False),
    ]

    def __init__(self, columns: tuple[tuple[str, str, int | None], ...], shown: tuple[str, ...],
                 required: str) -> None:
        super().__init__()
        self._columns = columns
        self._shown = shown
        self._required = required  # the one column that cannot go (rows need a name)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="columns"):
            yield Label("Domains columns", id="dialog-title")
            with Vertical(id="column-list"):
                for key, label, _ in self._columns:
                    yield TickBox(label, key in self._shown or key == self._required, id=f"column-{key}",
                                  disabled=key == self._required)
            yield Label("Space shows or hides · Enter or y applies · Esc or n cancels", id="columns-help")

    def _boxes(self) -> list[TickBox]:
        return [box for box in self.query(TickBox) if not box.disabled]

    def on_mount(self) -> None:
        self._boxes()[0].focus()

    def action_move(self, step: int) -> None:
        boxes = self._boxes()
        here = next((i for i, box in enumerate(boxes) if box is self.focused), 0)
        boxes[max(0, min(len(boxes) - 1, here + step))].focus()

    def action_apply(self) -> None:
        chosen = {key for key, _, _ in self._columns if self.query_one(f"#column-{key}", TickBox).value}
        self.dismiss(tuple(key for key, _, _ in self._columns if key in chosen | {self._required}))

    def action_cancel(self) -> None:
        self.dismiss(None)

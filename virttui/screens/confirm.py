"""A yes/no confirmation that names what will be affected."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label, Static

from virttui.screens.dialog import Dialog


class ConfirmScreen(Dialog[bool]):
    """Returns True only on an explicit yes: y, or Enter once the operator has moved to the Yes button.
    It opens on Cancel, so a stray Enter (typing meant for another window, a key repeated) cancels;
    Escape and n mean no."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "Cancel", show=False),
        Binding("enter", "press_default", "Default", show=False),  # when no button has the focus
    ]

    YES_HINT = " (y)"  # how the Yes button says it is pressed from the keyboard
    DEFAULT = "no"  # the button focused on opening: what a stray Enter presses

    def __init__(self, title: str, body: str, yes_label: str = "Yes") -> None:
        super().__init__()
        self._title = title
        self._body = body
        self._yes_label = yes_label

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self._title, id="dialog-title", markup=False)
            yield Static(self._body, id="dialog-body", markup=False)
            with Horizontal(id="dialog-buttons"):
                yield Button(f"{self._yes_label}{self.YES_HINT}", variant="error", id="yes")
                yield Button("Cancel (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one(f"#{self.DEFAULT}", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    def action_press_default(self) -> None:
        self.query_one(f"#{self.DEFAULT}", Button).press()


class TrustScreen(ConfirmScreen, inherit_bindings=False):
    """Trusting a host key takes a deliberate choice: no single-letter yes. The dialog can appear
    while the operator is typing (a host's first connect finishes whenever it does), and a stray
    'y' must not save a key nobody read. Tab (or an arrow) to Trust, then Enter."""

    BINDINGS = [
        Binding("n", "answer(False)", "Refuse"),
        Binding("escape", "answer(False)", "Cancel", show=False),
        Binding("tab,right", "app.focus_next", "Other button", show=False),  # Screen's own, not inherited here
        Binding("shift+tab,left", "app.focus_previous", "Other button", show=False),
    ]
    YES_HINT = " (Tab, Enter)"

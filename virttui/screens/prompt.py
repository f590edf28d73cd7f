"""A small form in a dialog: a few labelled text fields, OK or Cancel."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label

from virttui.assets import styles
from virttui.records import record
from virttui.screens.dialog import Dialog
from virttui.widgets.checkbox import TickBox


@record
class Field:
    """One input: its key in the result, label, starting value, and a check returning an error or ""."""

    key: str
    label: str
    value: str = ""
    placeholder: str = ""
    check: Callable[[str], str] | None = None


class PromptScreen(Dialog[dict[str, str] | None]):
    """Returns {key: text} on OK (Enter in any field, or on the flag), None on Escape. A field whose
    check fails keeps the dialog open, its error shown and the field focused to fix it."""

    DEFAULT_CSS = styles("prompt.tcss")

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter", "submit", "OK", show=False),  # the flag leaves Enter to the dialog
    ]

    def __init__(self, title: str, fields: list[Field], ok_label: str = "OK", note: str = "",
                 flag: str = "") -> None:
        super().__init__()
        self._title = title
        self._fields = fields
        self._ok_label = ok_label
        self._note = note
        self._flag = flag  # optional checkbox label; its value is returned under "flag" as "1" or ""

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="prompt"):
            yield Label(self._title, id="dialog-title", markup=False)
            if self._note:
                yield Label(self._note, id="prompt-note", markup=False)
            for field in self._fields:
                yield Label(field.label, classes="prompt-label", markup=False)
                box = Input(field.value, placeholder=field.placeholder, id=f"field-{field.key}")
                box.cursor_blink = not self.app.is_headless  # a blinking cursor would make snapshots flaky
                yield box
            if self._flag:
                yield TickBox(self._flag, id="prompt-flag")
            yield Label("", id="prompt-error", markup=False)
            with Horizontal(id="dialog-buttons"):
                yield Button(f"{self._ok_label} (Enter)", variant="primary", id="ok")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one(f"#field-{self._fields[0].key}", Input).focus()

    def _values(self) -> dict[str, str]:
        values = {f.key: self.query_one(f"#field-{f.key}", Input).value for f in self._fields}
        if self._flag:
            values["flag"] = "1" if self.query_one("#prompt-flag", TickBox).value else ""
        return values

    def _submit(self) -> None:
        values = self._values()
        for field in self._fields:
            error = field.check(values[field.key]) if field.check else ""
            if error:  # named by its field's label only where there is more than one field
                self._show_error(f"{field.label}: {error}" if len(self._fields) > 1 else error)
                self.query_one(f"#field-{field.key}", Input).focus()
                return
        self.dismiss(values)

    def _show_error(self, text: str) -> None:
        error = self.query_one("#prompt-error", Label)
        error.update(text)
        error.scroll_visible()  # in a dialog taller than the terminal it may be below the fold

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._submit()
        else:
            self.dismiss(None)

    def action_submit(self) -> None:
        self._submit()

    def action_cancel(self) -> None:
        self.dismiss(None)

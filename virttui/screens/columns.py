"""Choose the Domains pane's columns: a checklist, remembered in the config file."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, SelectionList
from textual.widgets.selection_list import Selection


class ColumnList(SelectionList[str]):
    """Space toggles a column (SelectionList's own key); Enter applies the choice."""

    BINDINGS = [Binding("enter", "screen.apply", "Apply")]


class ColumnsScreen(ModalScreen[tuple[str, ...] | None]):
    """Returns the chosen column keys in table order, or None on Escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, columns: tuple[tuple[str, str, int | None], ...], shown: tuple[str, ...],
                 required: str) -> None:
        super().__init__()
        self._columns = columns
        self._shown = shown
        self._required = required  # the one column that cannot go (rows need a name)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="columns"):
            yield Label("Domains columns", id="dialog-title")
            yield ColumnList(*(Selection(label, key, key in self._shown or key == self._required,
                                         disabled=key == self._required)
                               for key, label, _ in self._columns), id="column-list")
            yield Label("Space shows or hides · Enter applies · Esc cancels", id="columns-help")

    def on_mount(self) -> None:
        self.query_one(ColumnList).focus()

    def action_apply(self) -> None:
        chosen = set(self.query_one(ColumnList).selected) | {self._required}
        self.dismiss(tuple(key for key, _, _ in self._columns if key in chosen))

    def action_cancel(self) -> None:
        self.dismiss(None)

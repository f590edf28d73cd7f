"""The help screen: every key of the console."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from virttui import actiontable as registry
from virttui.widgets.difftable import Cell

NAVIGATION: tuple[tuple[str, str], ...] = (
    ("↑ ↓  j k  g G", "move the cursor in a pane; g G: to the top / bottom"),
    ("← →", "scroll a pane sideways to its other columns"),
    ("Tab  Shift+Tab", "next / previous pane"),
    ("Enter", "domain details (XML, sparklines); on a group: fold it"),
)
# The keys that are not the registry's actions, listed after them.
OTHER_KEYS: tuple[tuple[str, str], ...] = (
    ("n  v  Del", "details: new snapshot / revert to / delete the selected"),
    ("m", "details: set the balloon memory stats period"),
    ("/", "filter by name, host, state, UUID (8+ chars) or /path"),
    ("Esc", "clear the filter, else the marks; close a dialog"),
    ("o  O", "sort: host, name, state, CPU%, memory, vCPUs; O inverts"),
    ("Ctrl+R", "poll every host now"),
    ("C", "choose the Domains columns (remembered)"),
    ("z", "zoom: the Domains pane alone, full height (z: back)"),
    ("+  -", "add a host by URI and group / remove the selected host"),
    ("K", "ask again about a host key you declined (Hosts cursor)"),
    ("x", "clean up unused lease files (preview, confirm)"),
    ("Ctrl+P", "command palette: the main actions by name"),
    ("?", "this help"),
    ("q  Ctrl+Q", "quit (in this help, q closes it)"),
)


def key_rows() -> tuple[tuple[str, str], ...]:
    """Every key of the console: the registry's actions (those that act on marked domains before the
    marks' row, naming them), between the navigation keys and the others."""
    actions = [spec for spec in registry.keyed() if spec.help]
    bulk = [spec for spec in actions if spec.bulk]
    marks = ("Space  *", f"mark one / all shown; then {' '.join(spec.key for spec in bulk)} act on all marked")
    return (*NAVIGATION, *((spec.key, spec.help) for spec in bulk), marks,
            *((spec.key, spec.help) for spec in actions if not spec.bulk), *OTHER_KEYS)


KEYS = key_rows()  # as the table is at import


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Label("virttui keys — only actions valid for the domain's state are offered", id="help-title")
            table: DataTable = DataTable(id="help-keys", cursor_type="none", show_header=False)
            table.add_column("key", width=16)
            table.add_column("what", width=58)
            for key, what in key_rows():
                table.add_row(Cell(key, "bold"), Cell(what))
            yield table
            yield Label("Esc closes", id="help-foot")

    def action_close(self) -> None:
        self.dismiss(None)

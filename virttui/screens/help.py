"""The help screen: every key of the console."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Label

from virttui import actiontable as registry
from virttui.assets import styles
from virttui.screens.dialog import Dialog
from virttui.widgets.difftable import Cell
from virttui.widgets.navigation import ScrollTable

KEY_WIDTH, WHAT_WIDTH = 14, 57  # with cell padding and a scrollbar: the 76 columns inside an 80-wide box

NAVIGATION: tuple[tuple[str, str], ...] = (
    ("↑ ↓  j k", "up / down in any table or viewer"),
    ("g G  PgUp PgDn", "first / last row (also Home End); a page up / down"),
    ("← →", "scroll a pane sideways to its other columns"),
    ("Tab  Shift+Tab", "next / previous pane"),
    ("Enter", "domain details (XML, sparklines); on a group: fold it"),
)
# The keys that are not the registry's actions, listed after them.
OTHER_KEYS: tuple[tuple[str, str], ...] = (
    ("n  v  Del", "details: new snapshot / revert to / delete the selected"),
    ("m", "details: set the balloon memory stats period"),
    ("/", "filter by name, host, state, UUID (8+ chars) or /path"),
    (":", "command line: host, filter, sort, leases, an action…"),
    ("A", "the Domains pane over all hosts"),
    ("Esc", "clear filter, else marks; close details or a dialog"),
    ("o  O", "sort: host, name, state, CPU%, memory, vCPUs; O inverts"),
    ("C  z", "choose the Domains columns / zoom the Domains pane"),
    ("H  b", "short terminal: Hosts pane / Disks or Leases tab"),
    ("Ctrl+R", "poll every host now"),
    ("+  -", "add a host by URI and group / remove the selected host"),
    ("K", "ask again about a host key you declined (Hosts cursor)"),
    ("x", "clean up unused lease files (preview, confirm)"),
    ("L", "activity: every action, result and error, timestamped"),
    ("Ctrl+P  ?", "command palette: every action and view / this help"),
    ("q  Ctrl+Q", "quit; in details and this help, q goes back"),
)


def key_rows() -> tuple[tuple[str, str], ...]:
    """Every key of the console: the registry's actions (those that act on marked domains before the
    marks' row, naming them), between the navigation keys and the others."""
    actions = [spec for spec in registry.keyed() if spec.help]
    bulk = [spec for spec in actions if spec.bulk]
    marks = ("Space  *", "mark the domain and move down / mark all shown;\n"
             f"then {' '.join(spec.key for spec in bulk)} act on all marked")
    return (*NAVIGATION, *((spec.key, spec.help) for spec in bulk), marks,
            *((spec.key, spec.help) for spec in actions if not spec.bulk), *OTHER_KEYS)


KEYS = key_rows()  # as the table is at import


class HelpScreen(Dialog[None]):
    DEFAULT_CSS = styles("help.tcss")

    BINDINGS = [  # Esc, q and ? close it: q is not the app's quit here
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Label("virttui keys — only actions valid for the domain's state are offered", id="help-title")
            table = ScrollTable(id="help-keys", show_header=False)
            table.add_column("key", width=KEY_WIDTH)
            table.add_column("what", width=WHAT_WIDTH)
            for key, what in key_rows():
                # A line too long for the column wraps (the row grows), never cut and never scrolled to.
                table.add_row(Cell(key, "bold"), Text(what), height=None)
            yield table
            yield Label("Esc, q or ? closes · j k g G PgUp PgDn scroll", id="help-foot")

    def action_close(self) -> None:
        self.dismiss(None)

"""The activity screen (L): every line the console recorded, oldest first, live while it is open."""

from __future__ import annotations

import time
from collections import deque

from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, RichLog

from virttui.assets import styles
from virttui.console.activity import ActivityLog, Entry

# A symbol for each severity, so it never rests on colour alone.
MARKS: dict[str, tuple[str, str]] = {
    "information": ("·", "dim"),
    "warning": ("!", "bold yellow"),
    "error": ("✗", "bold red"),
}
LEGEND = "· info  ! warning  ✗ error"


def stamp(entry: Entry) -> str:
    return time.strftime("%H:%M:%S", time.localtime(entry.when))


def entry_row(entry: Entry) -> Table:
    """One entry as a grid row: a long text wraps under itself, not under the time."""
    mark, style = MARKS.get(entry.severity, MARKS["information"])
    grid = Table.grid(padding=(0, 1, 0, 0))
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row(Text(stamp(entry), style="dim"), Text(mark, style=style), Text(entry.text))  # Text: never markup
    return grid


class ActivityView(RichLog):
    """The entries, rendered at the view's width (again when it changes: RichLog would keep the old
    one, or the console's 80 columns); it follows the newest line unless the operator scrolled up."""

    BINDINGS = [
        Binding("j", "scroll_down", "Down", show=False),
        Binding("k", "scroll_up", "Up", show=False),
        Binding("g", "scroll_home", "Oldest", show=False),
        Binding("G", "scroll_end", "Newest"),
    ]

    def __init__(self, limit: int) -> None:
        super().__init__(id="activity-log", wrap=True, markup=False, highlight=False, auto_scroll=False)
        self.entries: deque[Entry] = deque(maxlen=limit)
        self.following = True
        self._limit = limit
        self._written = 0  # entries written since the view was last rendered afresh
        self._width = 0  # the width the lines are rendered at; 0 until the view has one

    def add(self, entries: list[Entry]) -> None:
        self.entries.extend(entries)
        if not self._width:
            return  # rendered when the view gets its width
        if not self._written or self._written + len(entries) > 2 * self._limit:
            # the first entries replace "nothing recorded yet"; open for long, the lines of entries
            # the log no longer keeps go
            self._render_all(self.following)
            return
        self._written += len(entries)
        for entry in entries:
            self.write(entry_row(entry), width=self._width, scroll_end=self.following)

    def _render_all(self, follow: bool) -> None:
        self.clear()
        self._written = len(self.entries)
        for entry in self.entries:
            self.write(entry_row(entry), width=self._width, scroll_end=follow)
        if not self.entries:
            self.write(Text("nothing recorded yet", style="dim"), width=self._width)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self.following = new_value >= self.max_scroll_y

    def on_resize(self, _event: events.Resize) -> None:
        # Runs before RichLog's own handler, which then renders the writes that waited for a size.
        width = self.scrollable_content_region.width
        if width and width != self._width:
            self._width = width
            self._render_all(self.following)


class ActivityScreen(Screen[None]):
    """Opened with L (or the palette's Activity); Esc, q or L closes it."""

    DEFAULT_CSS = styles("activity.tcss")

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("q", "close", "Close", show=False),
        Binding("L", "close", "Close", show=False),
    ]

    class Recorded(Message):
        """The activity log has a new entry (posted from whichever thread recorded it)."""

    def __init__(self, activity: ActivityLog) -> None:
        super().__init__()
        self.activity = activity
        self._shown = 0  # the seq of the last entry shown

    def compose(self) -> ComposeResult:
        yield ActivityView(self.activity.limit)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        view = self.query_one(ActivityView)
        view.border_subtitle = LEGEND
        self.app.clear_notifications()  # every one of them is a line here; their toasts would hide lines
        self.activity.subscribe(self._recorded)
        self._show_new()
        self._retitle(view)

    def on_unmount(self) -> None:
        self.activity.unsubscribe(self._recorded)

    def _recorded(self, _entry: Entry) -> None:
        self.post_message(self.Recorded())

    def on_activity_screen_recorded(self, _message: Recorded) -> None:
        self._show_new()

    def _show_new(self) -> None:
        entries = self.activity.entries(after=self._shown)
        if not entries:
            return
        self._shown = entries[-1].seq
        view = self.query_one(ActivityView)
        view.add(entries)
        self._retitle(view)

    def _retitle(self, view: ActivityView) -> None:
        count = len(self.activity)
        kept = f"the last {count}" if self.activity.last_seq > count else f"{count}"
        view.border_title = Content(f"Activity · {kept} line{'s' if count != 1 else ''}, oldest first")

    def action_close(self) -> None:
        self.dismiss(None)

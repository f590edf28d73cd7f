"""Keys before polls: on a large fleet, a poll's redraw waits while the operator is typing.

At 20 hosts nine polls land a second, and redrawing one costs a few to tens of milliseconds at
2000 domains: a key that arrived during that redraw waited for it (the cursor's p95 was 2-4x its
median). The poll's data is already in the fleet; only drawing it waits, for KEY_QUIET after the
last key and never more than MAX_WAIT, so holding a key down never freezes the panes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.screen import Screen
from textual.timer import Timer

if TYPE_CHECKING:
    from virttui.console.consoleapp import ConsoleApp

LARGE_FLEET = 500  # domains: below this a poll's redraw is a millisecond or two, and draws at once
KEY_QUIET = 0.2  # seconds after a key before a poll's data is drawn
MAX_WAIT = 1.0  # seconds a poll's data may wait, however fast the keys come


class KeysFirstMixin(Screen):
    """MainScreen's waiting for keys before drawing polls."""

    console: ConsoleApp
    _poll_draw: Timer | None = None
    _waiting_since: float | None = None

    if TYPE_CHECKING:
        def refresh_view(self, *, from_poll: bool = False) -> None: ...  # MainScreen's

    def poll_draw_waits(self) -> bool:
        """True when the poll just applied is drawn later (a timer is set, or was already)."""
        if self._poll_draw is not None:
            return True  # the waiting draw will show this poll too
        wait = self._wait()
        if wait <= 0:
            return False
        self._waiting_since = self.console.collector.clock()
        self._poll_draw = self.set_timer(wait, self._draw_waiting_poll)
        return True

    def _wait(self) -> float:
        keys = self.console.collector  # it hears every key (VirtTUI.on_event), on its clock
        if keys.clock() - keys.last_key >= KEY_QUIET or self._fleet_size() < LARGE_FLEET:
            return 0.0
        now = keys.clock()
        until = keys.last_key + KEY_QUIET
        if self._waiting_since is not None:
            until = min(until, self._waiting_since + MAX_WAIT)
        return until - now

    def _fleet_size(self) -> int:
        fleet = self.console.fleet
        return sum(fleet.host_counts(uri)[1] for uri in fleet.uris)

    def _draw_waiting_poll(self) -> None:
        self._poll_draw = None
        wait = self._wait()
        if wait > 0:
            self._poll_draw = self.set_timer(wait, self._draw_waiting_poll)
            return
        self._waiting_since = None
        self.refresh_view(from_poll=True)

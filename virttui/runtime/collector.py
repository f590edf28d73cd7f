"""When the UI process collects cyclic garbage: on a timer, between poll bursts, not while typing.

Nearly everything a poll allocates stays alive, so automatic young collections cost much and free
little: the automatic collector stays off once the app has started, and start-up objects are
frozen out of every future collection. Textual's rendering does make cyclic garbage all the time,
so a full collection runs on a timer, on the UI thread between messages; one that falls due while
the operator types or poll results land waits for a pause, at most 3 s. The measurements behind
each choice are in docs/performance.md.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.app import App


def pause_collection_for_start() -> None:
    """Called before the first heavy import of a `virttui` run; `resume_collection` (or the console's
    collector, after its first frame) undoes it."""
    gc.disable()


def resume_collection() -> None:
    gc.enable()


FULL_COLLECTION_EVERY_S = 10.0
TYPING_PAUSE_S = 1.0  # no key for this long: the operator has paused
COLLECTION_DEFER_MAX_S = 3.0  # a collection waits for a pause at most this long past its time


class CycleCollector:
    """Turns automatic collection off once the app has started, then runs full collections on its
    timers; `busy` says when poll results are being handled (a collection then waits too)."""

    def __init__(self, app: App, *, clock=time.monotonic,  # noqa: ANN001 - a monotonic clock
                 busy: Callable[[], bool] = lambda: False) -> None:
        self.app = app
        self.clock = clock
        self.busy = busy
        self.last_key = float("-inf")
        self.due_since: float | None = None
        self._before: tuple[bool, tuple[int, int, int]] | None = None

    def key_pressed(self) -> None:
        self.last_key = self.clock()

    def start(self) -> None:
        """Collect what start-up left, freeze the survivors, and leave collecting to the timer
        (`virttui` already paused automatic collection for its start: virttui.runtime.launch)."""
        if self._before is not None:
            return
        self._before = (gc.isenabled(), gc.get_threshold())
        gc.collect()
        gc.freeze()
        gc.disable()
        self.app.set_timer(FULL_COLLECTION_EVERY_S, self.collect)

    def stop(self) -> None:
        """Give the process its collector back as it was (an app run inside a test run, say)."""
        if self._before is None:
            return
        enabled, threshold = self._before
        self._before = None
        gc.unfreeze()
        gc.set_threshold(*threshold)
        if enabled:
            gc.enable()

    def collect(self) -> None:
        """A full collection now, unless the operator is typing or polls are landing (then in a moment)."""
        if self._before is None:
            return  # stopped
        now = self.clock()
        if self.due_since is None:
            self.due_since = now
        waiting = now - self.last_key < TYPING_PAUSE_S or self.busy()
        if waiting and now - self.due_since < COLLECTION_DEFER_MAX_S:
            self.app.set_timer(TYPING_PAUSE_S / 2, self.collect)
            return
        gc.collect()
        self.due_since = None
        self.app.set_timer(FULL_COLLECTION_EVERY_S, self.collect)

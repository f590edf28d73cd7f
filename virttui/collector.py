"""When the UI process collects cyclic garbage: rarely, and not while the operator is typing.

Measured at 2000 domains: the cyclic GC added ~40 ms per full refresh on average and ~100 ms
full collections set the p95. Start-up objects (modules, CSS, widgets) never die: they are
frozen out of every future collection, and the young generation is collected less often.

But Textual's rendering makes cyclic garbage all the time (every Strip cropped to its own width
caches itself; every restyle makes virtual DOM nodes), and with full collections that rare it
piled up between them: the soak's RSS grew ~25 % in 2 minutes, mostly fragmented pymalloc arenas
kept by the peaks. So a full collection runs on a timer, on the UI thread between messages:
20-55 ms at 2000 domains (~0.4 % of a core at this interval), and the 10-minute soak stays flat.
Such a pause in the middle of someone typing a filter was the slowest keystroke of the keys
benchmark, so a collection that falls due within a second of a key waits for a pause in the
typing, but only briefly: deferred up to 30 s, collections under the soak's steady key presses
came every ~30 s and its RSS grew 10.2 % (5.8 % at 10 s apart), so a typist gets 3 s.
"""

from __future__ import annotations

import gc
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.app import App

FULL_COLLECTION_EVERY_S = 10.0
TYPING_PAUSE_S = 1.0  # no key for this long: the operator has paused
COLLECTION_DEFER_MAX_S = 3.0  # a collection waits for a pause at most this long past its time


class CycleCollector:
    """Tunes the collector once the app has started, then runs full collections on its timers."""

    def __init__(self, app: App, *, clock=time.monotonic) -> None:  # noqa: ANN001 - a monotonic clock
        self.app = app
        self.clock = clock
        self.last_key = float("-inf")
        self.due_since: float | None = None

    def key_pressed(self) -> None:
        self.last_key = self.clock()

    def start(self) -> None:
        """Collect what start-up left, freeze the survivors, space out future collections, resume them."""
        gc.collect()
        gc.freeze()
        gc.set_threshold(10_000, 20, 20)
        gc.enable()  # `virttui` paused it for the start (virttui.launch)
        self.app.set_timer(FULL_COLLECTION_EVERY_S, self.collect)

    def collect(self) -> None:
        """A full collection now, unless the operator is typing (then in a moment)."""
        now = self.clock()
        if self.due_since is None:
            self.due_since = now
        typing = now - self.last_key < TYPING_PAUSE_S
        if typing and now - self.due_since < COLLECTION_DEFER_MAX_S:
            self.app.set_timer(TYPING_PAUSE_S / 2, self.collect)
            return
        gc.collect()
        self.due_since = None
        self.app.set_timer(FULL_COLLECTION_EVERY_S, self.collect)

"""Clocks that tests set by hand."""

from __future__ import annotations

import time


class SteppedClock:
    """A clock that moves only when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class WallClock:
    """The time module with time() set by the test (`now`, or the real time plus `ahead`): when, for
    the lease readers' racy rule, a read happens. Everything else is the real time module."""

    def __init__(self, now: float | None = None, *, ahead: float = 0.0) -> None:
        self.now = now
        self.ahead = ahead

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)

    def time(self) -> float:
        return self.now if self.now is not None else time.time() + self.ahead

"""Crash safety: an unexpected exception is logged with its traceback and shown as one line.

Textual's default is to exit and print a traceback. The console instead keeps
running (a repeating failure still ends it, with one line, not a traceback):
the terminal is restored by Textual's own shutdown either way.
"""

from __future__ import annotations

import logging
import time
from collections import deque

log = logging.getLogger("virttui.runtime.crash")

BURST = 5  # this many unexpected errors…
BURST_SECONDS = 10.0  # …within this window mean something is stuck failing: give up cleanly


class ErrorContainment:
    """Decides, per unexpected exception, whether the app can keep running."""

    def __init__(self) -> None:
        self._recent: deque[float] = deque(maxlen=BURST)

    def absorb(self, error: BaseException) -> bool:
        """Log the error; True if the app should carry on."""
        log.error("unexpected error: %s", error, exc_info=(type(error), error, error.__traceback__))
        now = time.monotonic()
        self._recent.append(now)
        return not (len(self._recent) == BURST and now - self._recent[0] < BURST_SECONDS)


def one_line(error: BaseException) -> str:
    """What the operator sees: the error in one line, and where the details are."""
    text = " ".join(str(error).split()) or type(error).__name__
    return f"internal error: {type(error).__name__}: {text[:200]} (details in the log)"


def contained(handler):  # noqa: ANN001, ANN201 - decorates a message handler or action of a DOM node
    """Run a handler so that an unexpected exception is reported instead of stopping its message loop.

    Textual stops a widget's message loop at the first exception a handler raises; the handlers
    that turn host data into screen rows are where a surprise from a host would strike, so they
    report through the app (`VirtTUI.report_error`) and the screen keeps working.
    """
    import functools

    @functools.wraps(handler)
    def wrapper(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        try:
            return handler(self, *args, **kwargs)
        except Exception as error:  # noqa: BLE001 - this is the containment point
            report = getattr(self.app, "report_error", None)
            if report is None:
                raise
            report(error)
            return None

    return wrapper

"""The activity log: what the console told the operator, timestamped, kept after the toast is gone.

Every line is also written to the `virttui.activity` logger, so the log file holds the same record.
Its texts are the notifications' texts, which may quote a host (names, errors): each is made one
printable line of bounded length before it is kept or logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from virttui.format import printable
from virttui.records import record

Severity = Literal["information", "warning", "error"]

LIMIT = 1000  # entries kept; the oldest go first
MAX_TEXT = 500  # characters of one line's text
LEVELS: dict[str, int] = {"information": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

log = logging.getLogger("virttui.activity")
log.addHandler(logging.NullHandler())  # with no log file set up, not Python's last resort: stderr under the TUI


def one_line(text: str, limit: int = MAX_TEXT) -> str:
    """`text` as one printable line of at most `limit` characters: line breaks and tabs become spaces,
    other control characters "?", and a longer text is cut with "…"."""
    flat = " ".join(part.strip() for part in text.replace("\t", " ").splitlines() if part.strip())
    flat = printable(flat)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@record
class Entry:
    """One line of the record; `seq` counts every entry ever recorded, from 1."""

    seq: int
    when: float  # wall clock, seconds since the epoch
    severity: Severity
    text: str


class ActivityLog:
    """A bounded record of entries, oldest first. `record` may be called from any thread (Textual's
    notify is thread-safe); listeners run on the recording thread, after the entry is kept."""

    def __init__(self, limit: int = LIMIT, clock: Callable[[], float] = time.time,
                 logger: logging.Logger = log) -> None:
        self.limit = limit
        self.clock = clock
        self._logger = logger
        self._entries: deque[Entry] = deque(maxlen=limit)
        self._seq = 0
        self._lock = threading.Lock()
        self._listeners: list[Callable[[Entry], object]] = []

    def record(self, text: str, severity: Severity = "information") -> Entry:
        if severity not in LEVELS:
            severity = "information"
        line = one_line(text)
        with self._lock:
            self._seq += 1
            entry = Entry(self._seq, self.clock(), severity, line)
            self._entries.append(entry)
            listeners = list(self._listeners)
        self._logger.log(LEVELS[severity], "%s", line)
        for listener in listeners:
            listener(entry)
        return entry

    def entries(self, after: int = 0) -> list[Entry]:
        """The entries kept whose seq is above `after`, oldest first."""
        with self._lock:
            return [entry for entry in self._entries if entry.seq > after]

    @property
    def last_seq(self) -> int:
        return self._seq

    def __len__(self) -> int:
        return len(self._entries)

    def subscribe(self, listener: Callable[[Entry], object]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[Entry], object]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

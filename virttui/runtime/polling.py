"""Per-host polling: one short thread worker per poll, the next one scheduled on completion.

Polls of one host never overlap (requests during a poll are remembered and
make one poll after a pause as long as that poll took), so threads never pile
up behind a slow host nor does an event storm keep it busy, and a
failing host backs off exponentially without slowing the others. Polls asked
for by a host's events are at least half an interval apart: a guest can make
its host send events without end (a reboot loop, RTC or balloon changes).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from textual.timer import Timer

from virttui.console.messages import HostChanged, HostFailed, HostPolled
from virttui.console.workers import Workers, run_blocking, run_now
from virttui.drivers.base import Driver
from virttui.drivers.errors import DriverError
from virttui.drivers.model import ConnectionState, Host, HostSnapshot
from virttui.locks.readers import ELECTION
from virttui.runtime.firstpoll import FirstPoll

# Event-driven polls of one host are at least half an interval apart, and never more than this: a
# long interval (an hour, for a quiet fleet) must not hold back a change an event announced.
MAX_EVENT_GAP = 5.0

log = logging.getLogger(__name__)
MAX_BACKOFF = 60.0
# A poll asked for while one runs (events, actions) follows after a pause as long as the poll took,
# at least this: during an event storm a slow host is polled at most about half the time instead
# of back to back.
MIN_REPOLL_GAP = 0.1


class PollingApp(Workers, Protocol):
    """What the scheduler needs of its app: VirtTUI's (tests pass a stand-in). Poll results go to it as
    HostPolled and HostFailed messages (virttui.console.workers), handled by its on_host_polled / on_host_failed."""

    def set_timer(self, delay: float, callback: Callable[[], object], *args: Any, **kwargs: Any) -> Timer: ...


class _HostLoop:
    def __init__(self, driver: Driver, first_poll: FirstPoll | None = None) -> None:
        self.driver = driver
        self.first_poll = first_poll  # started before the app (virttui.runtime.firstpoll): the first poll's outcome
        self.connected = False
        self.running = False
        self.again = False
        self.failures = 0
        self.timer: Timer | None = None
        self.spacing = False  # `timer` is the pause before a re-poll, not the periodic poll
        self.event_timer: Timer | None = None  # the poll for events that came within the gap
        self.event_polled = float("-inf")  # monotonic time the latest event-driven poll was asked for
        self.started = 0.0  # monotonic time the latest poll started
        self.seq = 0  # sequence number of the latest poll started
        self.first_seq = 0  # polls numbered below this belong to an earlier loop of the same URI
        # Removal and a poll thread ending race for who closes the driver: whoever comes second.
        self.lock = threading.Lock()
        self.in_flight = False
        self.retired = False


class PollScheduler:
    """Drives every host's poll loop from the UI thread."""

    def __init__(self, app: PollingApp, drivers: list[Driver], interval: float, *, autopoll: bool = True,
                 monotonic: Callable[[], float] = time.monotonic,
                 first_polls: dict[str, FirstPoll] | None = None) -> None:
        self.app = app
        self.interval = interval
        self.autopoll = autopoll
        first_polls = first_polls or {}
        self._loops = {driver.uri: _HostLoop(driver, first_polls.get(driver.uri)) for driver in drivers}
        self._monotonic = monotonic
        # One numbering for every loop, so a late message from a removed host's poll can never be
        # taken for a poll of the same URI added again.
        self._last_seq = 0
        self._stopped = False  # the console is ending: no poll starts, no result is applied

    def driver(self, uri: str) -> Driver:
        return self._loops[uri].driver

    @property
    def drivers(self) -> list[Driver]:
        return [loop.driver for loop in self._loops.values()]

    def has(self, uri: str) -> bool:
        return uri in self._loops

    def loop_of(self, uri: str) -> object | None:
        """This host's current poll loop, as a token: compared by `is_current` when a late message arrives."""
        return self._loops.get(uri)

    def is_current(self, uri: str, loop: object | None) -> bool:
        return loop is not None and self._loops.get(uri) is loop

    def owns(self, uri: str, seq: int) -> bool:
        """Whether a poll message belongs to this host's current loop (not a removed one's)."""
        loop = self._loops.get(uri)
        return loop is not None and seq >= loop.first_seq and not self._stopped

    def add(self, driver: Driver) -> None:
        """A host added at run time: its loop starts with a poll now."""
        if driver.uri in self._loops:
            raise ValueError(f"{driver.uri} is already polled")
        if ELECTION.watched_hosts:  # its first poll may share a lease directory with the others
            ELECTION.watched_hosts += 1
        loop = _HostLoop(driver)
        loop.first_seq = self.next_seq(driver.uri)
        self._loops[driver.uri] = loop
        self.poll_now(driver.uri)

    def remove(self, uri: str) -> None:
        """Stop polling a host and close its driver, off the UI thread (an SSH close can wait on the
        network). A poll in flight closes it when it ends instead, so a connect that was still
        under way cannot leave a connection open; its message is dropped as no longer owned."""
        loop = self._loops.pop(uri, None)
        if loop is None:
            return
        _stop_timers(loop)
        with loop.lock:
            loop.retired = True
            close_now = not loop.in_flight
        if close_now:
            self.app.run_worker(lambda: close_driver(loop.driver), thread=True, name=f"close {uri}",
                                exit_on_error=False)

    def start(self) -> None:
        """First polls: in-process hosts right here, so the first frame already shows their domains
        (measured: the empty frames painted while waiting for the worker threads cost ~90 ms of a
        ~420 ms start with the demo), and so the snapshot of a first poll already over; every other
        host on its worker as always."""
        if self._stopped:
            return
        for uri, loop in self._loops.items():
            # a first poll that succeeded while the console started is taken as an in-process host's is
            # (a failed one goes the worker's way: stopping its event stream can wait seconds)
            if loop.driver.polls_in_process or (loop.first_poll is not None and loop.first_poll.succeeded()):
                loop.running = True
                loop.started = self._monotonic()  # the next poll an interval from now
                self._last_seq += 1
                loop.seq = self._last_seq
                # handled now, not posted: a posted message would be handled after the first frame
                run_now(self.app, functools.partial(self._poll_once, loop), _reported(uri, loop.seq))
            else:
                self.poll_now(uri)

    def polling(self) -> bool:
        """Whether any host's poll is running, due right after its pause, or its result is on its way to the UI."""
        return any(loop.running or loop.spacing for loop in self._loops.values())

    def poll_all(self) -> None:
        for uri in self._loops:
            self.poll_now(uri)

    def poll_now(self, uri: str) -> None:
        """Poll this host as soon as possible (after a poll in flight and the pause that follows it)."""
        loop = self._loops.get(uri)
        if loop is None or self._stopped:  # removed meanwhile (an action's follow-up poll of a host just removed)
            return
        if loop.spacing:
            return  # a re-poll is already due, right after its pause
        if loop.timer is not None:
            loop.timer.stop()
            loop.timer = None
        if loop.running:
            loop.again = True
            return
        if loop.event_timer is not None:  # this poll starts after those events: it shows their changes
            loop.event_timer.stop()
            loop.event_timer = None
        loop.running = True
        loop.started = self._monotonic()
        self._last_seq += 1
        loop.seq = seq = self._last_seq
        run_blocking(self.app, functools.partial(self._poll, loop), _reported(uri, seq), group=f"poll {uri}",
                     name=f"poll {uri}")

    def poll_on_event(self, uri: str) -> None:
        """The host's event stream reported a change: poll now, unless an event-driven poll was asked
        for less than half an interval (at most MAX_EVENT_GAP) ago; then one poll at the end of that gap serves every
        event that came meanwhile. A quiet host's first event is still polled at once."""
        loop = self._loops.get(uri)
        if loop is None or self._stopped or loop.event_timer is not None:
            return
        now = self._monotonic()
        wait = loop.event_polled + min(self.interval / 2, MAX_EVENT_GAP) - now
        if wait <= 0:
            loop.event_polled = now
            self.poll_now(uri)
        else:
            loop.event_timer = self.app.set_timer(wait, lambda: self._event_poll(uri, loop))

    def _event_poll(self, uri: str, loop: _HostLoop) -> None:
        loop.event_timer = None
        if self._loops.get(uri) is loop:
            loop.event_polled = self._monotonic()
            self.poll_now(uri)

    def next_seq(self, uri: str) -> int:
        """A number every later poll of this host carries or exceeds (numbers only grow)."""
        return self._last_seq + 1

    def _poll(self, loop: _HostLoop) -> HostSnapshot | None:
        """Runs in a worker thread: never touches widgets. None: no poll (the host is gone, or the
        console ending), so no message."""
        with loop.lock:
            if loop.retired or self._stopped:  # queued behind other workers while the console ended
                return None
            loop.in_flight = True
        try:
            return self._poll_once(loop)
        finally:
            with loop.lock:
                loop.in_flight = False
                close_now = loop.retired
            if close_now:
                close_driver(loop.driver)

    def _poll_once(self, loop: _HostLoop) -> HostSnapshot:
        """Connect if need be and poll; a failure stops the host's events and is raised (_reported)."""
        driver = loop.driver
        first, loop.first_poll = loop.first_poll, None
        try:
            if first is not None:
                try:
                    snapshot = first.outcome()
                finally:
                    if first.connected:
                        loop.connected = True
                        self._watch(driver)
            else:
                if not loop.connected:
                    driver.connect()
                    loop.connected = True
                    self._watch(driver)
                snapshot = driver.poll()
        except Exception as exc:  # a bug must not kill the loop either: logged, shown in one line
            if not isinstance(exc, DriverError):
                log.exception("poll of %s failed", driver.uri)
            loop.connected = False
            _unwatch(driver)
            raise
        return snapshot

    def _watch(self, driver: Driver) -> None:
        uri = driver.uri

        def changed() -> None:  # from the driver's thread
            self.app.post_message(HostChanged(uri))

        driver.watch(changed)

    def finished(self, uri: str, ok: bool) -> float | None:
        """Called on the UI thread when a poll's message arrives; returns the retry delay on failure."""
        loop = self._loops.get(uri)
        if loop is None:
            return None
        loop.running = False
        loop.failures = 0 if ok else loop.failures + 1
        # the exponent capped: 2 ** 1024 is past what a float holds, and a host down overnight
        # must still be retried in the morning
        delay = self.interval if ok else min(MAX_BACKOFF, self.interval * 2 ** min(loop.failures - 1, 16))
        if loop.again:
            loop.again = False
            took = self._monotonic() - loop.started
            loop.spacing = True
            loop.timer = self.app.set_timer(min(self.interval, max(MIN_REPOLL_GAP, took)),
                                            lambda: self._repoll(uri))
        elif self.autopoll:
            if ok:  # an interval from start to start: a slow answer or a busy UI must not stretch the period
                delay = max(MIN_REPOLL_GAP, loop.started + self.interval - self._monotonic())
            loop.timer = self.app.set_timer(delay, lambda: self.poll_now(uri))
        return None if ok else delay

    def _repoll(self, uri: str) -> None:
        loop = self._loops.get(uri)
        if loop is not None:
            loop.spacing = False
            loop.timer = None
            self.poll_now(uri)

    def with_retry(self, host: Host, delay: float | None) -> Host:
        return replace(host, retry_in_s=delay) if delay is not None else host

    def stop(self) -> None:
        """The console is ending: no poll starts from now on and results still arriving are not
        applied (at 2000 domains each costs the UI thread time the exit needs)."""
        self._stopped = True
        for loop in self._loops.values():
            _stop_timers(loop)


def _reported(uri: str, seq: int) -> Callable[[HostSnapshot | None, Exception | None], HostPolled | HostFailed | None]:
    """A poll's outcome as the message that reports it (run_blocking's `result`)."""

    def message(snapshot: HostSnapshot | None, error: Exception | None) -> HostPolled | HostFailed | None:
        if error is not None:
            why = str(error) if isinstance(error, DriverError) else f"internal error: {type(error).__name__}: {error}"
            return HostFailed(Host(uri=uri, state=ConnectionState.ERROR, last_error=why), seq)
        return None if snapshot is None else HostPolled(snapshot, seq)

    return message


def _stop_timers(loop: _HostLoop) -> None:
    loop.spacing = False
    for timer in (loop.timer, loop.event_timer):
        if timer is not None:
            timer.stop()
    loop.timer = loop.event_timer = None


def close_driver(driver: Driver) -> None:
    """Stop a host's events and close it; a failure is logged, never raised (others are closing too)."""
    try:
        driver.unwatch()
        driver.close()
    except Exception:  # closing a removed host must never disturb the others
        log.exception("closing %s", driver.uri)


def _unwatch(driver: Driver) -> None:
    """Stop a failed host's event stream; a driver failing at that too must not end its poll loop."""
    try:
        driver.unwatch()
    except Exception:  # noqa: BLE001 - the failure being reported is the poll's
        log.exception("stopping the event stream of %s failed", driver.uri)

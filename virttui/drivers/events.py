"""A host's `virsh event --all --loop` stream, read on its own thread.

Event readers block for as long as the host is quiet, so they must not sit in
Textual's worker pool (6 threads on 2 cores): each host gets one daemon thread
that turns event lines into callbacks and reopens the stream with backoff
when it breaks (libvirtd restarted, SSH dropped).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from virttui.drivers.errors import DriverError
from virttui.drivers.transport import LineStream, Transport
from virttui.drivers.virshparse import VirshEvent, parse_event

log = logging.getLogger(__name__)
MAX_BACKOFF = 30.0


class EventWatcher:
    """Calls `on_event` for every domain event of one host until stopped."""

    def __init__(self, transport: Transport, argv: Sequence[str], on_event: Callable[[VirshEvent], None],
                 name: str) -> None:
        self._transport = transport
        self._argv = list(argv)
        self._on_event = on_event
        self._stop = threading.Event()
        self._stream: LineStream | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"events {name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        delay = 0.5
        reopened = False
        while not self._stop.is_set():
            try:
                stream = self._transport.stream(self._argv)
            except DriverError as exc:
                log.info("event stream not open: %s", exc)
            else:
                with self._lock:
                    if self._stop.is_set():
                        stream.close()
                        return
                    self._stream = stream
                if reopened:  # what happened while no stream was open is unknown
                    self._deliver(VirshEvent("reopened", ""))
                reopened = True
                if self._pump(stream):
                    delay = 0.5  # it worked for a while: reconnect quickly
            if self._stop.wait(delay):
                return
            delay = min(MAX_BACKOFF, delay * 2)

    def _pump(self, stream: LineStream) -> bool:
        """Deliver events until the stream ends; True if any arrived."""
        got = False
        while not self._stop.is_set():
            line = stream.readline()
            if not line:
                break
            event = parse_event(line)
            if event is not None:
                got = True
                self._deliver(event)
        stream.close()
        return got

    def _deliver(self, event: VirshEvent) -> None:
        try:
            self._on_event(event)
        except Exception:  # a callback bug must not end the stream
            log.exception("event callback failed")

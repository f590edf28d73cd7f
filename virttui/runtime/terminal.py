"""The console's hold on its terminal and its threads: ending when the terminal goes away without a
SIGHUP, and thread workers that never hold the exit past its grace."""

from __future__ import annotations

import functools
import os
import select
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from textual.driver import Driver as TerminalDriver

QUIT_GRACE = 3.0  # seconds thread workers get when the console ends on q


class WorkerThreads(ThreadPoolExecutor):
    """The event loop's default executor, where Textual runs thread workers (polls, actions, closes):
    at most `workers` at once, as before, but on daemon threads, and shut down waiting QUIT_GRACE
    seconds at most (or until `deadline`). asyncio.run waits for every thread worker as the app
    ends: a poll held up by an unreachable host (up to a 30 s command timeout), or 20 polls queued
    behind 6 threads at 2000 domains, held the exit long after the screen was gone."""

    def __init__(self, workers: int) -> None:
        super().__init__(max_workers=workers)  # starts no thread of its own: submit is replaced
        self.deadline: float | None = None  # monotonic; set when the console must end by then
        self._slots = threading.BoundedSemaphore(workers)
        self._threads: set[threading.Thread] = set()
        self._guard = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()

        def run() -> None:
            with self._slots:
                if future.set_running_or_notify_cancel():
                    try:
                        result = fn(*args, **kwargs)
                    except BaseException as exc:  # noqa: BLE001 - handed to whoever awaits it, as the pool does
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
            with self._guard:
                self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=run, name="virttui worker", daemon=True)
        with self._guard:
            self._threads.add(thread)
        thread.start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if wait:
            deadline = self.deadline if self.deadline is not None else time.monotonic() + QUIT_GRACE
            with self._guard:
                threads = list(self._threads)
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
        super().shutdown(wait=False, cancel_futures=cancel_futures)


@functools.cache
def hangup_aware_driver() -> type[TerminalDriver]:
    """Textual's LinuxDriver, ending the console when its terminal goes away without a SIGHUP.

    The input thread then read EOF in a busy loop (or died of EIO, shown as a traceback), and the
    console polled on unseen. The Textual internals relied on, all here: LinuxDriver.fileno (the
    fd it reads), run_input_thread letting a read error out, and Driver._app and Driver._loop.
    """
    from textual.drivers.linux_driver import LinuxDriver

    class HangupAwareDriver(LinuxDriver):
        _gone = False
        _stop_watch: int | None = None

        def start_application_mode(self) -> None:
            super().start_application_mode()
            stop_read, self._stop_watch = os.pipe()
            threading.Thread(target=self._watch_hangup, args=(stop_read,), name="virttui hangup watch",
                             daemon=True).start()

        def stop_application_mode(self) -> None:
            if self._stop_watch is not None:
                os.close(self._stop_watch)  # the watch wakes on its pipe's hangup and ends
                self._stop_watch = None
            super().stop_application_mode()

        def _watch_hangup(self, stop_read: int) -> None:
            """Sleeps until the terminal hangs up (POLLHUP: a pty whose other side closed, a pipe at
            EOF) or the watch is stopped: no wakeups meanwhile, nothing read."""
            poller = select.poll()
            poller.register(self.fileno, 0)  # no events asked: POLLHUP, POLLERR and POLLNVAL come anyway
            poller.register(stop_read, select.POLLIN)
            try:
                ready = poller.poll()
            finally:
                os.close(stop_read)
            if any(fd == self.fileno for fd, _ in ready):
                self.terminal_gone()

        def run_input_thread(self) -> None:
            try:
                super().run_input_thread()
            except OSError:  # EIO: the terminal went away under a read
                self.terminal_gone()

        def terminal_gone(self) -> None:
            if self._gone:
                return
            # Nothing is written from now on: the writer thread dies of EIO, and writes queued
            # behind it would block the UI thread once its queue is full.
            self._gone = True
            try:
                self._loop.call_soon_threadsafe(cast(Any, self._app).terminal_gone)  # VirtTUI.terminal_gone
            except RuntimeError:  # the event loop has closed: the console has ended anyway
                pass

        def write(self, data: str) -> None:
            if not self._gone:
                super().write(data)

        def close(self) -> None:
            if not self._gone:  # else stopping the writer thread could wait on its full queue forever
                super().close()

    return HangupAwareDriver

"""The first poll of every host that is not embedded, started before the console imports Textual.

The first poll mostly waits on virsh and libvirtd, and importing Textual and composing the first
frame mostly waits on the interpreter (docs/performance.md): started first, on a thread of its
own, the poll runs while the interpreter imports; the poll scheduler takes its outcome as the host's
first poll (virttui.runtime.polling). No Textual import here, on purpose.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from virttui.drivers.base import Driver
from virttui.drivers.model import HostSnapshot


class FirstPoll:
    """connect() then poll() of one driver, on its own thread."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.connected = False  # connect() succeeded (poll() may still have failed)
        self._snapshot: HostSnapshot | None = None
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name=f"first poll {driver.uri}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.driver.connect()
            self.connected = True
            self._snapshot = self.driver.poll()
        except Exception as exc:  # handed over: the scheduler reports it as any poll's failure
            self._error = exc

    def succeeded(self) -> bool:
        """Whether it is over and outcome() would give its snapshot without waiting."""
        return not self._thread.is_alive() and self._error is None

    def outcome(self) -> HostSnapshot:
        """Wait for it: the snapshot, or what connect() or poll() raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._snapshot is not None
        return self._snapshot


def start_first_polls(drivers: Iterable[Driver]) -> dict[str, FirstPoll]:
    """A first poll for every host polled over a process or the network, by URI. Embedded hosts
    are left out: the scheduler polls those before the first frame, in the UI thread."""
    return {driver.uri: FirstPoll(driver) for driver in drivers if not driver.polls_in_process}

"""What the console's controllers are handed instead of the App: the fleet, the scheduler, a UI port,
and the hosts coming and going.

ActionRunner, Essentials, HostKeyPrompter and Roster see the console through a `ConsoleContext`
only: they read the `Fleet`, find drivers and ask for polls through the `PollScheduler`, and talk
to the operator through `UIPort` (notifications, dialogs, workers; VirtTUI is its implementation).
A host added or removed at run time is a signal (`host_added`, `host_removed`) that Roster emits
and every owner of per-host state subscribes to: the scheduler and the fleet first (subscribed
here), then the controllers and the app, in the order they were made.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from virttui.console.workers import Workers
from virttui.records import record

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel

    from virttui.drivers.base import Driver
    from virttui.fleet import Fleet
    from virttui.runtime.polling import PollScheduler

T = TypeVar("T")


class UIPort(Workers, Protocol):
    """What the controllers ask of the UI: VirtTUI's (Workers: run a worker, post a message to the app)."""

    @property
    def screen(self) -> object:
        """The screen on top (a dialog, maybe)."""
        ...

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None: ...

    def record(self, text: str, severity: SeverityLevel = "information") -> None:
        """Keep a line in the activity record (L, the log file) without a toast."""
        ...

    def push_screen(self, screen: Any, callback: Callable[[Any], None] | None = None) -> object:
        """Show a dialog (confirm, prompt); `callback` gets its answer."""
        ...

    def broadcast_fleet(self) -> None:
        """The fleet changed: every screen shows it."""
        ...

    def suspend(self) -> AbstractContextManager[None]:
        """The terminal handed over (the serial console) for the with block."""
        ...

    def refresh(self) -> object: ...


class Signal(Generic[T]):
    """Callbacks run in the order they subscribed, on the UI thread, when `emit` is called."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[T], object]] = []

    def subscribe(self, callback: Callable[[T], object]) -> None:
        self._subscribers.append(callback)

    def emit(self, value: T) -> None:
        for callback in list(self._subscribers):
            callback(value)


@record(frozen=False)
class ConsoleContext:
    """The narrow view of the console its controllers get."""

    fleet: Fleet
    scheduler: PollScheduler
    ui: UIPort
    host_added: Signal[Driver] = field(default_factory=Signal)  # its driver, just opened
    host_removed: Signal[str] = field(default_factory=Signal)  # its URI

    def __post_init__(self) -> None:
        # The fleet lists a host before its first poll can arrive; the scheduler stops polling a
        # removed host (and closes it) before anything else forgets it.
        self.host_added.subscribe(lambda driver: self.fleet.add_host(driver.uri))
        self.host_added.subscribe(self.scheduler.add)
        self.host_removed.subscribe(self.scheduler.remove)
        self.host_removed.subscribe(self.fleet.remove_host)

"""What the screens use of the app besides Textual's App: its state and its controllers.

Screens are typed against this Protocol, not against VirtTUI, so no screen imports virttui.console.app
(VirtTUI implements it). `LifecycleActions.console` is the app seen this way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from virttui.console.actions import ActionRunner
    from virttui.console.essentials import Essentials
    from virttui.console.hostkeys import HostKeyPrompter
    from virttui.console.roster import Roster
    from virttui.fleet import Fleet
    from virttui.runtime.collector import CycleCollector
    from virttui.runtime.polling import PollScheduler


class ConsoleApp(Protocol):
    fleet: Fleet
    scheduler: PollScheduler
    actions: ActionRunner
    essentials: Essentials
    host_keys: HostKeyPrompter
    roster: Roster
    collector: CycleCollector  # also hears every key (last_key, on its clock)

    def refresh_now(self) -> None:
        """Poll every host now, reporting when all answered."""
        ...

    def open_cleanup(self, host_uri: str | None) -> None:
        """Preview the removable lease files of a host's directory (None: the first that has one)."""
        ...

"""The interface every driver implements; the UI and CLI see only this."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from enum import Enum

from virttui import actiontable as registry  # the one table of actions: no Textual, and nothing of this module
from virttui.drivers.errors import NotSupported
from virttui.drivers.model import DomainSnapshot, DomainState, HostSnapshot


class Action(str, Enum):
    """The lifecycle actions `perform` runs, named as virsh names them. What the console knows of
    each (label, valid states, state after) is its entry in virttui/actiontable.py."""

    START = "start"
    SHUTDOWN = "shutdown"
    REBOOT = "reboot"
    DESTROY = "destroy"
    SUSPEND = "suspend"
    RESUME = "resume"

    @property
    def label(self) -> str:
        return registry.spec(self.value).label


class Driver(ABC):
    """A connection to one host. Methods block; callers run them off the UI thread.

    Domains are always addressed by UUID. Failures are DriverError subclasses.
    """

    uri: str
    # True when a poll is in-process work of a few milliseconds (the embedded test driver): the
    # first one may then run before the first frame, which then shows the domains at once.
    polls_in_process: bool = False

    @abstractmethod
    def connect(self) -> None:
        """Open the connection; raises ConnectionFailed."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection and everything held for it."""

    @abstractmethod
    def poll(self) -> HostSnapshot:
        """One consistent snapshot of the host, its domains, disks and leases."""

    @abstractmethod
    def domain_xml(self, uuid: str) -> str:
        """The domain's live XML, as `virsh dumpxml` prints it."""

    @abstractmethod
    def perform(self, uuid: str, action: Action) -> None:
        """Run one lifecycle action; raises OperationInvalid, LeaseConflict…"""

    def start(self, uuid: str) -> None:
        self.perform(uuid, Action.START)

    def shutdown(self, uuid: str) -> None:
        self.perform(uuid, Action.SHUTDOWN)

    def reboot(self, uuid: str) -> None:
        self.perform(uuid, Action.REBOOT)

    def destroy(self, uuid: str) -> None:
        self.perform(uuid, Action.DESTROY)

    def suspend(self, uuid: str) -> None:
        self.perform(uuid, Action.SUSPEND)

    def resume(self, uuid: str) -> None:
        self.perform(uuid, Action.RESUME)

    def pm_wakeup(self, uuid: str) -> None:
        """Wake a domain its guest suspended to RAM (pmsuspended)."""
        raise NotSupported(f"{self.uri}: domains cannot be woken here")

    def watch(self, on_change: Callable[[], None]) -> None:  # noqa: B027 - optional: polled drivers need none
        """Call `on_change` (from any thread) whenever the host reports a change; polled drivers ignore it."""

    def unwatch(self) -> None:  # noqa: B027 - optional, as watch
        """Stop calling back; safe when never watched."""

    def pending_host_key(self):  # -> virttui.drivers.ssh.UnknownHostKey | None
        """An unknown SSH host key the last connect refused, awaiting the operator's verdict."""
        return None

    def trust_host_key(self, pending) -> None:  # noqa: ANN001, B027 - the UnknownHostKey the operator was shown
        """Save the key the operator was shown as trusted; the next connect uses it."""

    # -- operator essentials: drivers that cannot, say so --------------------------
    def set_autostart(self, uuid: str, enabled: bool) -> None:
        raise NotSupported(f"{self.uri}: autostart cannot be changed here")

    def undefine(self, uuid: str, *, remove_storage: bool = False) -> None:
        """Remove the domain's definition; its disks stay unless remove_storage says otherwise."""
        raise NotSupported(f"{self.uri}: domains cannot be undefined here")

    def snapshots(self, uuid: str) -> list[DomainSnapshot]:
        raise NotSupported(f"{self.uri}: no snapshots here")

    def create_snapshot(self, uuid: str, name: str, description: str = "") -> None:
        raise NotSupported(f"{self.uri}: no snapshots here")

    def revert_snapshot(self, uuid: str, name: str) -> None:
        raise NotSupported(f"{self.uri}: no snapshots here")

    def delete_snapshot(self, uuid: str, name: str) -> None:
        raise NotSupported(f"{self.uri}: no snapshots here")

    def set_memory_stats_period(self, uuid: str, seconds: int) -> None:
        """Ask the guest's balloon driver to report memory stats every `seconds` (0 turns it off)."""
        raise NotSupported(f"{self.uri}: memory stats period cannot be set here")

    def has_console(self) -> bool:
        """Whether attach_console can work on this host at all (asked before the TUI hands over the terminal)."""
        return False

    def attach_console(self, uuid: str) -> None:
        """Attach this process's terminal to the domain's serial console until Ctrl+] detaches.

        Blocks; the caller hands over the terminal first (Textual's App.suspend)."""
        raise NotSupported(f"{self.uri}: no serial console here")

    def lease_manager(self):  # -> virttui.locks.manager.LeaseManager | None (the lock-manager seam)
        """The host's lease directory manager, or None when it has no sanlock leases."""
        return None


# The state a domain is in once the action returned success (registry: state_after).
STATE_AFTER: dict[Action, DomainState] = {
    action: after for action in Action if (after := registry.spec(action.value).state_after) is not None
}


def valid_actions(state: DomainState) -> frozenset[Action]:
    """The actions libvirt accepts in this state; the UI offers only these."""
    return frozenset(action for action in Action if action.value in registry.valid_ids(state))

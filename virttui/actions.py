"""Lifecycle actions from the UI: confirm when dangerous, run off the UI thread, report.

An action is addressed by host URI + UUID. It shows as pending on its row
from the key press until a poll started after it completed has arrived, so
the operator never sees the old state flash back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from virttui.drivers.base import STATE_AFTER, Action, Driver, valid_actions
from virttui.drivers.errors import DriverError
from virttui.drivers.model import ConnectionState, Domain, DomainState
from virttui.messages import ActionFinished

if TYPE_CHECKING:
    from virttui.app import VirtTUI

log = logging.getLogger(__name__)

NEEDS_CONFIRMATION = frozenset({Action.DESTROY, Action.REBOOT})
PENDING_LABELS = {
    Action.START: "starting",
    Action.SHUTDOWN: "shutting down",
    Action.REBOOT: "rebooting",
    Action.DESTROY: "forcing off",
    Action.SUSPEND: "pausing",
    Action.RESUME: "resuming",
}
CONFIRM_NOTES = {
    Action.DESTROY: "Force off pulls the virtual power plug: unsaved data in the guest is lost.",
    Action.REBOOT: "The guest is asked to reboot; its services go down for a while.",
}


class ActionRunner:
    """Owns the set of in-flight actions for one app."""

    def __init__(self, app: VirtTUI) -> None:
        self.app = app
        self.pending: dict[tuple[str, str], str] = {}  # (uri, uuid) -> label shown on the row
        self._clear_at: dict[tuple[str, str], int] = {}  # (uri, uuid) -> poll seq that ends "pending"
        # (uri, uuid) -> (state an action's success confirmed, poll seq from which polls show it)
        self._confirmed: dict[tuple[str, str], tuple[DomainState, int]] = {}

    def request(self, uri: str, dom: Domain, action: Action) -> None:
        """Entry point for keys and palette commands."""
        from virttui.screens.confirm import ConfirmScreen

        if action not in valid_actions(dom.state):
            self.app.notify(f"{action.label}: {dom.name} is {dom.state.value}", severity="warning", markup=False)
            return
        if (uri, dom.uuid) in self.pending:
            self.app.notify(f"{dom.name}: an action is already in progress", severity="warning", markup=False)
            return
        host = self.app.fleet.host(uri).label
        if action in NEEDS_CONFIRMATION:
            body = f"{action.label} domain “{dom.name}” on host {host}?\n\n{CONFIRM_NOTES[action]}"

            def answered(yes: bool | None) -> None:
                if yes:
                    self._run_if_still_valid(uri, dom, action)

            self.app.push_screen(ConfirmScreen(f"{action.label} {dom.name}", body, yes_label=action.label), answered)
        else:
            self._run(uri, dom.uuid, dom.name, action)

    def request_bulk(self, domains: list[tuple[str, Domain]], action: Action, done: Callable[[], None]) -> None:
        """One confirmation listing every marked domain the action fits; each then runs on its own
        worker, so one failure (reported for that domain) never stops the others."""
        from virttui.screens.confirm import ConfirmScreen

        fits = [(uri, dom) for uri, dom in domains
                if action in valid_actions(dom.state) and (uri, dom.uuid) not in self.pending]
        skipped = len(domains) - len(fits)
        if not fits:
            self.app.notify(f"{action.label}: none of the {len(domains)} marked domains can", severity="warning",
                            markup=False)
            return
        lines = [f"  {dom.name} on {self.app.fleet.host(uri).label}" for uri, dom in fits[:8]]
        if len(fits) > 8:
            lines.append(f"  … and {len(fits) - 8} more")
        body = f"{action.label} these {len(fits)} domains?\n" + "\n".join(lines)
        if skipped:
            body += f"\n\n{skipped} marked domain{'s' if skipped != 1 else ''} skipped (not valid in their state)."
        if action in CONFIRM_NOTES:
            body += f"\n\n{CONFIRM_NOTES[action]}"

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            refused = []
            for uri, dom in fits:
                why = self._why_not_now(uri, dom.uuid, action)
                if why:
                    refused.append((dom.name, why))
                else:
                    self._run(uri, dom.uuid, dom.name, action)
            if refused:  # one line, not one per domain
                name, why = refused[0]
                more = f" and {len(refused) - 1} more" if len(refused) > 1 else ""
                self.app.notify(f"{action.label}: {len(refused)} of {len(fits)} not done ({name}: {why}{more})",
                                severity="warning", markup=False)
            done()

        self.app.push_screen(ConfirmScreen(f"{action.label} {len(fits)} domains", body,
                                           yes_label=f"{action.label} {len(fits)}"), answered)

    def _run_if_still_valid(self, uri: str, dom: Domain, action: Action) -> None:
        """After a confirmation: the dialog may have stayed open while the host failed or the domain
        changed state; the keys would not have offered the action then, so neither does the answer."""
        why = self._why_not_now(uri, dom.uuid, action)
        if why:
            self.app.notify(f"{action.label} {dom.name}: not done, {why}", severity="warning", markup=False)
            return
        self._run(uri, dom.uuid, dom.name, action)

    def _why_not_now(self, uri: str, uuid: str, action: Action) -> str:
        host = self.app.fleet.host(uri)
        if host.state is not ConnectionState.CONNECTED:
            return f"{host.label} is {host.state_words}"
        now = self.app.fleet.domain(uri, uuid)
        if now is None:
            return "it is gone"
        if action not in valid_actions(now.state):
            return f"it is {now.state.value} now"
        return "an action is already in progress" if (uri, uuid) in self.pending else ""

    def _run(self, uri: str, uuid: str, name: str, action: Action) -> None:
        loop = self.app.scheduler.loop_of(uri)
        if loop is None:  # removed meanwhile (a confirmation answered after the host went)
            return
        driver = self.app.scheduler.driver(uri)  # taken now: the worker may start after a removal
        self.pending[(uri, uuid)] = PENDING_LABELS[action]
        self.app.broadcast_fleet()
        self.app.run_worker(lambda: self._perform(driver, loop, uri, uuid, name, action), thread=True,
                            group=f"action {uri}", name=f"{action.value} {name}", exit_on_error=False)

    def _perform(self, driver: Driver, loop: object, uri: str, uuid: str, name: str, action: Action) -> None:
        """Worker thread: the driver call, then one message back."""
        error = ""
        try:
            driver.perform(uuid, action)
        except DriverError as exc:
            error = str(exc)
        except Exception as exc:  # never let a bug reach the screen as a traceback
            log.exception("%s of %s on %s failed", action.value, name, uri)
            error = f"internal error: {type(exc).__name__}: {exc}"
        self.app.post_message(ActionFinished(uri, uuid, name, action, error, loop))

    def finished(self, message: ActionFinished) -> None:
        if not self.app.scheduler.is_current(message.uri, message.loop):
            return  # its host was removed (and maybe added again): nothing of it is this host's now
        key = (message.uri, message.uuid)
        host = self.app.fleet.host(message.uri).label
        if message.error:
            self.pending.pop(key, None)
            error = message.error
            dom = self.app.fleet.domain(message.uri, message.uuid)
            if message.action is Action.START and dom is not None:  # sanlock says "host_id 1": name it
                error += "".join(f"; its {target} is in use by {holder}"
                                 for target, holder in self.app.fleet.disks_held_elsewhere(message.uri, dom))
            self.app.notify(f"{message.action.label} {message.name} on {host} failed: {error}",
                            severity="error", timeout=10, markup=False)
        elif message.action in STATE_AFTER and self.app.fleet.set_domain_state(
                message.uri, message.uuid, STATE_AFTER[message.action]):
            # virsh said it is done: show the new state now, not ~100 ms later after a poll. A poll
            # that was already under way may still bring the old state: until one started after
            # this arrives, the confirmed state is laid over it (host_polled).
            self.pending.pop(key, None)
            self._clear_at.pop(key, None)
            self._confirmed[key] = (STATE_AFTER[message.action], self.app.scheduler.next_seq(message.uri))
        else:
            self._clear_at[key] = self.app.scheduler.next_seq(message.uri)
        if self.app.scheduler.has(message.uri):  # not when the host was removed meanwhile
            self.app.scheduler.poll_now(message.uri)

    def forget_host(self, uri: str) -> None:
        """A removed host: nothing of it is pending any more."""
        for table in (self.pending, self._clear_at, self._confirmed):
            for key in [key for key in table if key[0] == uri]:
                del table[key]

    def host_polled(self, uri: str, seq: int) -> None:
        """A poll arrived: actions it reflects are no longer pending."""
        for key, (state, wanted) in list(self._confirmed.items()):
            if key[0] != uri:
                continue
            if seq >= wanted:
                del self._confirmed[key]
            else:
                self.app.fleet.set_domain_state(uri, key[1], state)
        for key, wanted in list(self._clear_at.items()):
            if key[0] == uri and seq >= wanted:
                del self._clear_at[key]
                self.pending.pop(key, None)

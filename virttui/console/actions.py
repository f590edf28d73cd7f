"""Lifecycle actions from the UI: confirm when dangerous, run off the UI thread, report.

Every action is an entry of virttui/actiontable.py: its label, valid states, confirmation note,
pending label, state after and driver method are read from there. An action is addressed by
host URI + UUID. It shows as pending on its row from the key press until a poll started after
it completed has arrived, so the operator never sees the old state flash back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from virttui import actiontable as registry
from virttui.actiontable import ActionSpec
from virttui.console.messages import ActionFinished
from virttui.console.workers import run_blocking
from virttui.drivers.errors import DriverError
from virttui.drivers.model import ConnectionState, Domain, DomainState
from virttui.format import plural

if TYPE_CHECKING:
    from virttui.console.context import ConsoleContext
    from virttui.console.essentials import Essentials

log = logging.getLogger(__name__)
TOAST_GAP = 1.0  # seconds: a success result sooner than this after the last toast goes to the record (L) only


class ActionRunner:
    """Owns the set of in-flight actions for one app."""

    def __init__(self, ctx: ConsoleContext, essentials: Essentials,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.fleet, self.scheduler, self.ui = ctx.fleet, ctx.scheduler, ctx.ui
        self.essentials = essentials  # the actions with dialogs of their own
        ctx.host_removed.subscribe(self.forget_host)
        # [confirm] in the config: action id -> whether it asks first, over the registry's default
        self.confirm_overrides: dict[str, bool] = {}
        self.pending: dict[tuple[str, str], str] = {}  # (uri, uuid) -> label shown on the row
        self._bulk: dict[tuple[str, str], _BulkGroup] = {}  # actions on marked domains: one toast for them all
        self._clock = clock
        self._last_toast = float("-inf")  # when the last success toast was shown (monotonic)
        self._untoasted = 0  # success results since then kept in the record only
        # a start refused for a lease whose holder was not known yet: (label, name, polls left to name it)
        self._unnamed: dict[tuple[str, str], tuple[str, str, int]] = {}
        self._clear_at: dict[tuple[str, str], int] = {}  # (uri, uuid) -> poll seq that ends "pending"
        # (uri, uuid) -> (state an action's success confirmed, poll seq from which polls show it)
        self._confirmed: dict[tuple[str, str], tuple[DomainState, int]] = {}

    def request(self, uri: str, dom: Domain, action: str) -> None:
        """Entry point for keys and palette commands: a registry id (or a drivers.base.Action)."""
        from virttui.screens.confirm import ConfirmScreen

        spec = registry.spec(action)
        if spec.essentials:  # its own dialogs and checks
            getattr(self.essentials, spec.essentials)(uri, dom)
            return
        spec = spec.choose([dom])
        if not spec.fits(dom):
            self.ui.notify(spec.refusal(dom), severity="warning", markup=False)
            return
        if (uri, dom.uuid) in self.pending:
            self.ui.notify(f"{dom.name}: an action is already in progress", severity="warning", markup=False)
            return
        host = self.fleet.host(uri).label
        if self.asks_first(spec):
            body = f"{spec.label} domain “{dom.name}” on host {host}?" + (f"\n\n{spec.confirm}" if spec.confirm else "")

            def answered(yes: bool | None) -> None:
                if yes:
                    self._run_if_still_valid(uri, dom, spec)

            self.ui.push_screen(ConfirmScreen(f"{spec.label} {dom.name}", body, yes_label=spec.label), answered)
        else:
            self._run(uri, dom.uuid, dom.name, spec)

    def asks_first(self, spec: ActionSpec) -> bool:
        """Whether one domain's action is confirmed: the config's choice, else the registry's."""
        return self.confirm_overrides.get(spec.id, spec.confirm is not None)

    def request_bulk(self, domains: list[tuple[str, Domain]], action: str, done: Callable[[], None],
                     hidden: list[tuple[str, Domain]] | None = None) -> None:
        """One confirmation listing every marked domain the action fits; each then runs on its own
        worker, so one failure (reported for that domain) never stops the others. `hidden`: marked
        domains the operator can't see now, listed apart in the confirmation and left alone."""
        from virttui.screens.confirm import ConfirmScreen

        spec = registry.spec(action).choose([dom for _, dom in domains])
        if not spec.runs_in_runner:
            raise ValueError(f"{spec.id} does not act on marked domains")
        if not domains and hidden:
            self.ui.notify(f"{spec.label}: {plural(len(hidden), 'marked domain')} hidden by the filter or the Hosts "
                           "choice; show them to act on them, or drop the marks (Esc)", severity="warning",
                           markup=False)
            return
        fits = [(uri, dom) for uri, dom in domains if spec.fits(dom) and (uri, dom.uuid) not in self.pending]
        skipped = len(domains) - len(fits)
        if not fits:
            shown = f"the {len(domains)} marked domains" if len(domains) != 1 else "the marked domain"
            self.ui.notify(f"{spec.label}: none of {shown} can" if len(domains) != 1
                           else f"{spec.label}: {shown} can't", severity="warning", markup=False)
            return
        body = f"{spec.label} {_these(len(fits))}?\n" + "\n".join(self._listed(fits))
        if skipped:
            body += f"\n\n{plural(skipped, 'marked domain')} skipped (not valid in their state)."
        if hidden:
            body += (f"\n\nLeft alone, hidden by the filter or the Hosts choice ({plural(len(hidden), 'domain')}):\n"
                     + "\n".join(self._listed(hidden)) + "\nShow them (Esc clears the filter) to include them.")
        if spec.confirm:
            body += f"\n\n{spec.confirm}"

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            refused = []
            group = _BulkGroup(spec.label)
            for uri, dom in fits:
                why = self._why_not_now(uri, dom.uuid, spec)
                if why:
                    refused.append((dom.name, why))
                else:
                    group.waiting.add((uri, dom.uuid))
                    self._bulk[(uri, dom.uuid)] = group
                    self._run(uri, dom.uuid, dom.name, spec)
            if refused:  # one line, not one per domain
                name, why = refused[0]
                more = f" and {len(refused) - 1} more" if len(refused) > 1 else ""
                self.ui.notify(f"{spec.label}: {len(refused)} of {len(fits)} not done ({name}: {why}{more})",
                               severity="warning", markup=False)
            done()

        self.ui.push_screen(ConfirmScreen(f"{spec.label} {plural(len(fits), 'domain')}", body,
                                          yes_label=f"{spec.label} {len(fits)}"), answered)

    def _listed(self, domains: list[tuple[str, Domain]], most: int = 8) -> list[str]:
        lines = [f"  {dom.name} on {self.fleet.host(uri).label}" for uri, dom in domains[:most]]
        if len(domains) > most:
            lines.append(f"  … and {len(domains) - most} more")
        return lines

    def _run_if_still_valid(self, uri: str, dom: Domain, spec: ActionSpec) -> None:
        """After a confirmation: the dialog may have stayed open while the host failed or the domain
        changed state; the keys would not have offered the action then, so neither does the answer."""
        why = self._why_not_now(uri, dom.uuid, spec)
        if why:
            self.ui.notify(f"{spec.label} {dom.name}: not done, {why}", severity="warning", markup=False)
            return
        self._run(uri, dom.uuid, dom.name, spec)

    def _why_not_now(self, uri: str, uuid: str, spec: ActionSpec) -> str:
        host = self.fleet.host(uri)
        if host.state is not ConnectionState.CONNECTED:
            return f"{host.label} is {host.state_words}"
        now = self.fleet.domain(uri, uuid)
        if now is None:
            return "it is gone"
        if not spec.fits(now):
            return f"it is {now.state.value} now"
        return "an action is already in progress" if (uri, uuid) in self.pending else ""

    def _run(self, uri: str, uuid: str, name: str, spec: ActionSpec) -> None:
        loop = self.scheduler.loop_of(uri)
        if loop is None:  # removed meanwhile (a confirmation answered after the host went)
            return
        driver = self.scheduler.driver(uri)  # taken now: the worker may start after a removal
        self.pending[(uri, uuid)] = spec.pending
        self.ui.broadcast_fleet()
        # the row says it is under way; the record keeps when it started
        self.ui.record(f"{name} on {self.fleet.host(uri).label}: {spec.pending}…")

        def finished(_: object, exc: Exception | None) -> ActionFinished:
            """Worker thread: the driver call's outcome as one message back."""
            error = ""
            if isinstance(exc, DriverError):
                error = str(exc)
            elif exc is not None:  # never let a bug reach the screen as a traceback
                log.error("%s of %s on %s failed", spec.id, name, uri, exc_info=exc)
                error = f"internal error: {type(exc).__name__}: {exc}"
            # the entry's id: for the drivers.base.Action ones, equal to the Action it stands for
            return ActionFinished(uri, uuid, name, spec.id, error, loop)

        run_blocking(self.ui, lambda: getattr(driver, spec.method)(uuid), finished, group=f"action {uri}",
                     name=f"{spec.id} {name}")

    def finished(self, message: ActionFinished) -> None:
        if not self.scheduler.is_current(message.uri, message.loop):
            return  # its host was removed (and maybe added again): nothing of it is this host's now
        key = (message.uri, message.uuid)
        spec = registry.spec(message.action)
        host = self.fleet.host(message.uri).label
        if message.error:
            self.pending.pop(key, None)
            error = message.error
            dom = self.fleet.domain(message.uri, message.uuid)
            if spec.takes_leases and dom is not None:  # sanlock says "host_id 1": name it
                holders = self.fleet.disks_held_elsewhere(message.uri, dom)
                error += "".join(f"; its {target} is in use by {holder}" for target, holder in holders)
                if not holders and "lease" in error:  # the holder's own start may not be polled yet
                    self._unnamed[key] = (spec.label, message.name, 2 * len(self.fleet.uris))
            self._report_done(key, f"{spec.label} {message.name} on {host} failed: {error}", failed=True)
            self._poll_after(message.uri)
            return
        self._report_done(key, _done(spec, message.name, host))
        if spec.state_after is not None and self.fleet.set_domain_state(
                message.uri, message.uuid, spec.state_after):
            # virsh said it is done: show the new state now, not ~100 ms later after a poll. A poll
            # that was already under way may still bring the old state: until one started after
            # this arrives, the confirmed state is laid over it (host_polled).
            self.pending.pop(key, None)
            self._clear_at.pop(key, None)
            self._confirmed[key] = (spec.state_after, self.scheduler.next_seq(message.uri))
        else:
            self._clear_at[key] = self.scheduler.next_seq(message.uri)
        self._poll_after(message.uri)

    def _report_done(self, key: tuple[str, str], text: str, failed: bool = False) -> None:
        """One action's result: a toast, or for one of many marked domains a line in the record and a
        toast once the last of them is done (a bulk action on 100 guests is one toast, not 100)."""
        group = self._bulk.pop(key, None)
        if group is None and failed:
            self.ui.notify(text, severity="error", timeout=10, markup=False)
            return
        if group is None:
            now = self._clock()
            if now - self._last_toast < TOAST_GAP:  # results in quick succession: one toast, the rest in L
                self._untoasted += 1
                self.ui.record(text)
                return
            more = f" (and {self._untoasted} more: L)" if self._untoasted else ""
            self._last_toast, self._untoasted = now, 0
            self.ui.notify(text + more, timeout=3, markup=False)
            return
        self.ui.record(text, "error" if failed else "information")
        group.waiting.discard(key)
        group.failed += failed
        group.done += 1
        if not group.waiting:
            failures = f", {group.failed} failed (L lists them)" if group.failed else ""
            self.ui.notify(f"{group.label}: {plural(group.done, 'domain')} done{failures}",
                           severity="warning" if group.failed else "information", markup=False)

    def _poll_after(self, uri: str) -> None:
        if self.scheduler.has(uri):  # not when the host was removed meanwhile
            self.scheduler.poll_now(uri)

    def _name_holders(self) -> None:
        """A refused start's holder, once a poll of any host shows who holds its disks (once, then forgotten)."""
        for key, (label, name, polls_left) in list(self._unnamed.items()):
            dom = self.fleet.domain(*key)
            holders = self.fleet.disks_held_elsewhere(key[0], dom) if dom is not None else []
            if holders:
                del self._unnamed[key]
                self.ui.notify(f"{label} {name}: " + "; ".join(f"its {target} is in use by {holder}"
                                                              for target, holder in holders),
                               severity="warning", timeout=10, markup=False)
            elif dom is None or polls_left <= 1:
                del self._unnamed[key]  # gone, or two polls of every host named nobody: nothing more to say
            else:
                self._unnamed[key] = (label, name, polls_left - 1)

    def forget_host(self, uri: str) -> None:
        """A removed host: nothing of it is pending any more."""
        for key, group in list(self._bulk.items()):
            if key[0] == uri:
                group.waiting.discard(key)  # its result won't come: the others' toast does not wait for it
        for table in (self.pending, self._clear_at, self._confirmed, self._unnamed, self._bulk):
            for key in [key for key in table if key[0] == uri]:
                del table[key]

    def host_polled(self, uri: str, seq: int) -> None:
        """A poll arrived: actions it reflects are no longer pending."""
        if self._unnamed:
            self._name_holders()
        for key, (state, wanted) in list(self._confirmed.items()):
            if key[0] != uri:
                continue
            if seq >= wanted:
                del self._confirmed[key]
            else:
                self.fleet.set_domain_state(uri, key[1], state)
        for key, wanted in list(self._clear_at.items()):
            if key[0] == uri and seq >= wanted:
                del self._clear_at[key]
                self.pending.pop(key, None)


def _these(n: int) -> str:
    return "this domain" if n == 1 else f"these {n} domains"


def _done(spec: ActionSpec, name: str, host: str) -> str:
    """An action's result, as the activity record and the notification say it."""
    if spec.state_after is None:  # shutdown, reboot: the guest was asked, and decides
        return f"{spec.label} {name} on {host}: asked the guest"
    return f"{spec.label} {name} on {host}: done, {spec.state_after.value}"


class _BulkGroup:
    """The domains one bulk action was started on, until the last reports."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.waiting: set[tuple[str, str]] = set()
        self.done = 0
        self.failed = 0

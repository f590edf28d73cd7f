"""Operator essentials from the UI: console, autostart, undefine, snapshots, memory stats period.

Like actions.py: addressed by host URI + UUID, confirmed when destructive,
driver calls on thread workers, one notification per outcome, then a poll.
The serial console is the exception: it needs the terminal, so the TUI is
suspended and the driver attaches on the UI thread until Ctrl+] detaches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from virttui.console.messages import EssentialFinished
from virttui.console.workers import run_blocking
from virttui.drivers.errors import DriverError
from virttui.drivers.model import Domain
from virttui.records import record

if TYPE_CHECKING:
    from virttui.console.context import ConsoleContext

log = logging.getLogger(__name__)


def _printable(text: str) -> str:
    return "" if text and all(ch.isprintable() for ch in text) else "use printable characters only"


def _name_check(text: str) -> str:
    return "a name is needed" if not text.strip() else _printable(text)


def _seconds_check(text: str) -> str:
    if text.isascii() and text.isdigit() and len(text) <= 5 and 0 <= int(text) <= 86400:
        return ""
    return "0 (off) to 86400 seconds"


@record
class _Call:
    """What an EssentialFinished message is about (its tag)."""

    uri: str
    what: str
    done: Callable[[object], None] | None
    success: str
    once_per: tuple[str, str] | None


class Essentials:
    """What the keys c, a, U and the detail screen's snapshot keys do."""

    def __init__(self, ctx: ConsoleContext) -> None:
        self.fleet, self.scheduler, self.ui = ctx.fleet, ctx.scheduler, ctx.ui
        ctx.host_removed.subscribe(self.forget_host)
        # (host uri, domain uuid) with a toggle in flight, or done but not yet seen by a poll (a press
        # then would compute the new value from the old state again); done ones -> the poll seq due
        self._running: set[tuple[str, str]] = set()
        self._settle_at: dict[tuple[str, str], int] = {}

    def _host(self, uri: str) -> str:
        return self.fleet.host(uri).label

    def run(self, uri: str, what: str, call: Callable[[], object], done: Callable[[object], None] | None = None,
            *, success: str = "", once_per: tuple[str, str] | None = None) -> None:
        """Run a driver call on a worker; report failure in one line, success via `done`, the
        `success` notice or a poll (`finished`, when its EssentialFinished arrives). once_per: a key
        (host, domain) with at most one such call running (a toggle pressed twice on a slow host
        would otherwise compute both from the same old state)."""
        if once_per is not None:
            if once_per in self._running:
                self.ui.notify(f"{what}: the previous change is still in progress", severity="warning",
                               markup=False)
                return
            self._running.add(once_per)
        run_blocking(self.ui, call, EssentialFinished.tagged(_Call(uri, what, done, success, once_per)),
                     group=f"essentials {uri}", name=what)

    def finished(self, message: EssentialFinished) -> None:
        """The call `run` started ended (the app hands its message here)."""
        call: _Call = message.tag
        uri, what, exc = call.uri, call.what, message.error
        if exc is not None:
            self._release(call.once_per, settled=False)
            if isinstance(exc, DriverError):
                self.ui.notify(f"{what} on {self._host(uri)} failed: {exc}", severity="error", timeout=10,
                               markup=False)
            else:  # a bug: log it, one line on screen
                log.error("%s on %s", what, uri, exc_info=exc)
                self.ui.notify(f"{what}: internal error: {exc}", severity="error", markup=False)
            return
        self._release(call.once_per, settled=True)
        if call.done is not None:
            call.done(message.value)
        if call.success:
            self.ui.notify(call.success, markup=False)
        self.scheduler.poll_now(uri)

    def _release(self, key: tuple[str, str] | None, *, settled: bool) -> None:
        """A failed call frees its key now; a done one once a later poll shows it."""
        if key is None:
            return
        if settled:
            self._settle_at[key] = self.scheduler.next_seq(key[0])
        else:
            self._running.discard(key)

    def forget_host(self, uri: str) -> None:
        """A removed host: none of its changes is waiting (it may be added again)."""
        self._running = {key for key in self._running if key[0] != uri}
        self._settle_at = {key: due for key, due in self._settle_at.items() if key[0] != uri}

    def host_polled(self, uri: str, seq: int) -> None:
        """A poll (or a failed one) arrived: changes made before it started are settled."""
        for key, due in list(self._settle_at.items()):
            if key[0] == uri and seq >= due:
                del self._settle_at[key]
                self._running.discard(key)

    # -- console --------------------------------------------------------------------
    def console(self, uri: str, dom: Domain) -> None:
        if not dom.state.is_active:
            self.ui.notify(f"{dom.name} is {dom.state.value}: its console needs it running", severity="warning",
                           markup=False)
            return
        driver = self.scheduler.driver(uri)
        if not driver.has_console():
            self.ui.notify(f"{self._host(uri)} has no serial console to attach to (an embedded host)",
                           severity="warning", markup=False)
            return
        error = ""
        try:
            with self.ui.suspend():
                # Caught inside: Textual's suspend() resumes only when its body returns, so an error
                # leaving it (no console on the guest, a lost connection, Ctrl+C while the channel
                # opens) left the console stopped, reading no key, with the terminal in cooked mode.
                try:
                    print(f"virttui: serial console of {dom.name} on {self._host(uri)} — Ctrl+] returns to virttui",
                          flush=True)
                    driver.attach_console(dom.uuid)
                except DriverError as exc:
                    error = str(exc)
                except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt too: back to the console
                    error = f"console ended: {type(exc).__name__}: {exc}"
                finally:
                    print("\x1b(B\x1b[0m", end="", flush=True)  # a guest's odd charset or colours stay behind
        except Exception as exc:  # noqa: BLE001 - SuspendNotSupported and friends: say so, carry on
            error = f"cannot hand over the terminal: {exc}"
        if error:
            self.ui.notify(f"console of {dom.name}: {error}", severity="error", timeout=10, markup=False)
        self.ui.refresh()

    # -- autostart and undefine ----------------------------------------------------------
    def toggle_autostart(self, uri: str, dom: Domain) -> None:
        enabled = not dom.autostart
        self.run(uri, f"autostart {'on' if enabled else 'off'} for {dom.name}",
                 lambda: self.scheduler.driver(uri).set_autostart(dom.uuid, enabled),
                 success=f"{dom.name}: autostart {'on' if enabled else 'off'}", once_per=(uri, dom.uuid))

    def undefine(self, uri: str, dom: Domain) -> None:
        from virttui.screens.prompt import Field, PromptScreen

        note = (f"Undefine “{dom.name}” on host {self._host(uri)}? Its definition and snapshot metadata go; "
                "its disks stay unless you tick the box.")
        if dom.state.is_active:
            note += " It is running: it keeps running, transient, until it stops."

        def name_check(text: str) -> str:  # a typo keeps the dialog open, to be fixed
            return "" if text == dom.name else f"type {dom.name} exactly to confirm"

        def answered(values: dict[str, str] | None) -> None:
            if values is None or values.get("confirm", "") != dom.name:
                return
            storage = bool(values.get("flag"))
            self.run(uri, f"undefine {dom.name}",
                     lambda: self.scheduler.driver(uri).undefine(dom.uuid, remove_storage=storage),
                     lambda _: self.ui.notify(f"{dom.name} undefined{' with its storage' if storage else ''}",
                                              markup=False))

        self.ui.push_screen(PromptScreen(
            f"Undefine {dom.name}", [Field("confirm", "Type the domain's name to confirm", check=name_check)],
            ok_label="Undefine", note=note, flag="Also delete its storage (all disks)"), answered)

    # -- memory stats ----------------------------------------------------------------
    def memory_stats_period(self, uri: str, dom: Domain) -> None:
        from virttui.screens.prompt import Field, PromptScreen

        # The period last set per (host, domain): a poll does not report it, so the dialog opens on it.
        periods: dict[tuple[str, str], int] = vars(self).setdefault("_stats_periods", {})

        def set_done(seconds: int) -> None:
            periods[(uri, dom.uuid)] = seconds
            self.ui.notify(f"{dom.name}: balloon stats every {seconds} s" if seconds
                           else f"{dom.name}: balloon stats off", markup=False)

        def answered(values: dict[str, str] | None) -> None:
            if values is None:
                return
            seconds = int(values["seconds"])
            self.run(uri, f"memory stats period of {dom.name}",
                     lambda: self.scheduler.driver(uri).set_memory_stats_period(dom.uuid, seconds),
                     lambda _: set_done(seconds))

        last = str(periods.get((uri, dom.uuid), 5))
        self.ui.push_screen(PromptScreen(
            f"Memory stats period of {dom.name}", [Field("seconds", "Seconds between balloon stats (0: off)", last,
                                                         check=_seconds_check)],
            note="Used memory shows once the guest's balloon driver reports it; otherwise n/a."), answered)

    # -- snapshots --------------------------------------------------------------------
    def create_snapshot(self, uri: str, dom: Domain, done: Callable[[object], None],
                        taken: frozenset[str] = frozenset()) -> None:
        """taken: the domain's snapshot names as last listed: one of those is refused in the dialog,
        before the call (the hypervisor would refuse it anyway, as an error after the wait)."""
        from virttui.screens.prompt import Field, PromptScreen

        def name_check(text: str) -> str:
            return _name_check(text) or ("a snapshot of that name exists" if text.strip() in taken else "")

        def answered(values: dict[str, str] | None) -> None:
            if values is None:
                return
            name, description = values["name"].strip(), values["description"].strip()
            self.run(uri, f"snapshot {name} of {dom.name}",
                     lambda: self.scheduler.driver(uri).create_snapshot(dom.uuid, name, description), done,
                     success=f"snapshot {name} of {dom.name} taken")

        self.ui.push_screen(PromptScreen(f"New snapshot of {dom.name}", [
            Field("name", "Name", placeholder="before-upgrade", check=name_check),
            Field("description", "Description (optional)",
                  check=lambda text: "" if not text else _printable(text)),
        ], ok_label="Create"), answered)

    def revert_snapshot(self, uri: str, dom: Domain, name: str, done: Callable[[object], None]) -> None:
        from virttui.screens.confirm import ConfirmScreen

        body = (f"Revert “{dom.name}” on host {self._host(uri)} to snapshot “{name}”?\n\n"
                "Everything the guest did since that snapshot is lost.")

        def answered(yes: bool | None) -> None:
            if yes:
                self.run(uri, f"revert {dom.name} to {name}",
                         lambda: self.scheduler.driver(uri).revert_snapshot(dom.uuid, name), done,
                         success=f"{dom.name} reverted to {name}")

        self.ui.push_screen(ConfirmScreen(f"Revert {dom.name}", body, yes_label="Revert"), answered)

    def delete_snapshot(self, uri: str, dom: Domain, name: str, done: Callable[[object], None]) -> None:
        from virttui.screens.confirm import ConfirmScreen

        body = f"Delete snapshot “{name}” of “{dom.name}” on host {self._host(uri)}? It cannot be restored."

        def answered(yes: bool | None) -> None:
            if yes:
                self.run(uri, f"delete snapshot {name} of {dom.name}",
                         lambda: self.scheduler.driver(uri).delete_snapshot(dom.uuid, name), done,
                         success=f"snapshot {name} of {dom.name} deleted")

        self.ui.push_screen(ConfirmScreen(f"Delete snapshot {name}", body, yes_label="Delete"), answered)

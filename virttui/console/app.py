"""The Textual application: wires drivers, the poll scheduler and the screens together."""

from __future__ import annotations

import functools
import logging
import os
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, cast

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from virttui.assets import asset
from virttui.config import Config
from virttui.console.actions import ActionRunner
from virttui.console.activity import ActivityLog
from virttui.console.context import ConsoleContext
from virttui.console.essentials import Essentials
from virttui.console.hostkeys import HostKeyPrompter
from virttui.console.messages import (
    ActionFinished,
    EssentialFinished,
    FleetUpdated,
    HostChanged,
    HostFailed,
    HostPolled,
    LeaseDirRead,
)
from virttui.console.refresh import RefreshReport
from virttui.console.roster import Roster
from virttui.console.workers import run_blocking
from virttui.drivers.base import Driver
from virttui.drivers.model import ConnectionState
from virttui.fleet import Fleet
from virttui.locks.model import LeaseDirSnapshot, LeaseState
from virttui.runtime.collector import CycleCollector
from virttui.runtime.crash import ErrorContainment, contained, one_line
from virttui.runtime.firstpoll import FirstPoll
from virttui.runtime.polling import PollScheduler
from virttui.runtime.terminal import QUIT_GRACE, WorkerThreads, hangup_aware_driver
from virttui.screens.main import MainScreen
from virttui.widgets import textual_fixes  # noqa: F401 - patches Textual on import

if TYPE_CHECKING:
    import asyncio

    from textual.driver import Driver as TerminalDriver
    from textual.notifications import SeverityLevel

log = logging.getLogger(__name__)
CLEANABLE = (LeaseState.FREE, LeaseState.ORPHAN)
# Ending on a signal or a lost terminal, hosts still closing and thread workers still running get
# until LEAVE_GRACE after it (the console must be gone within 3 s); on q, QUIT_GRACE each (a close
# could wait out a 30 s command).
LEAVE_GRACE = 1.5
_ended_in_terminal = False  # a console ran in a real terminal and has ended (see ended_in_terminal)


def ended_in_terminal() -> bool:
    """Whether a console ran in a real terminal (not headless) and has ended, the terminal restored:
    virttui.runtime.launch then exits without the interpreter's teardown."""
    return _ended_in_terminal


class VirtTUI(App):
    """A console over any number of hosts; it receives its drivers, so tests hand it test ones."""

    CSS_PATH = str(asset("styles", "virttui.tcss"))
    TITLE = "virttui"
    BINDINGS = [Binding("q", "quit", "Quit"), Binding("L", "activity", "Activity", show=False)]

    def __init__(
        self,
        drivers: list[Driver],
        *,
        poll_interval: float = 2.0,
        autopoll: bool = True,
        notices: Iterable[str] = (),
        contain_errors: bool = False,
        debug: bool = False,
        config: Config | None = None,
        first_polls: dict[str, FirstPoll] | None = None,
    ) -> None:
        super().__init__()
        if self.no_color:  # NO_COLOR: every state must still read in grey
            from virttui.widgets.nocolour import readable_in_grey

            self.ansi_theme_dark = readable_in_grey(self.ansi_theme_dark)
        self._containment = ErrorContainment() if contain_errors else None
        self.fatal_message = ""
        self.debug_log = debug
        self._log_handler: logging.Handler | None = None
        self.activity = ActivityLog()  # every notification, kept (L) and written to the log file
        self._host_errors: dict[str, str] = {}  # uri -> the poll error last recorded for it
        self.fleet = Fleet([driver.uri for driver in drivers])
        self.scheduler = PollScheduler(self, drivers, poll_interval, autopoll=autopoll, first_polls=first_polls)
        # What the controllers see of the console: never this App itself, only its UI port.
        self.context = ConsoleContext(self.fleet, self.scheduler, self)
        self.essentials = Essentials(self.context)
        self.actions = ActionRunner(self.context, self.essentials)
        self.host_keys = HostKeyPrompter(self.context)
        self.roster = Roster(self.context, config)
        self._refresh = RefreshReport()
        self.actions.confirm_overrides = dict(config.confirm) if config is not None else {}
        self.fleet.set_names(dict(config.names) if config is not None else {})
        self._notices = list(notices)
        self._signals: list[int] = []  # SIGTERM, SIGHUP: handled by the event loop while the console runs
        self._signals_loop: asyncio.AbstractEventLoop | None = None
        self._leave_by: float | None = None  # monotonic deadline, once a signal or the terminal's loss ends it
        self._worker_threads: WorkerThreads | None = None
        self.collector = CycleCollector(self, busy=self.scheduler.polling)
        self._warned: set[tuple[str, str]] = set()
        self.context.host_removed.subscribe(self._forget_host)

    def get_default_screen(self) -> Screen:
        """The main screen is the bottom of the stack: an empty default screen under it was composed,
        restyled and laid out at every start for nothing, and heard every fleet update."""
        return MainScreen()

    def on_mount(self) -> None:
        self.set_timer(1.0, self.collector.start)  # once started: it costs ~15-20 ms, a twentieth of a start
        if self.debug_log:
            self._show_log(self.screen)
        for notice in self._notices:
            self.notify(notice, severity="warning", timeout=10, markup=False)
        self._exit_on_signals()
        if not self.is_headless:
            import asyncio

            self._worker_threads = WorkerThreads(min(32, (os.cpu_count() or 1) + 4))  # ThreadPoolExecutor's
            asyncio.get_running_loop().set_default_executor(self._worker_threads)
        self.scheduler.start()

    def get_driver_class(self) -> type[TerminalDriver]:
        """Textual's own driver, but on Linux the one that notices a terminal gone without a SIGHUP."""
        driver_class = super().get_driver_class()
        try:
            from textual.drivers.linux_driver import LinuxDriver
        except ImportError:  # no termios: not a POSIX terminal
            return driver_class
        return hangup_aware_driver() if driver_class is LinuxDriver else driver_class

    def terminal_gone(self) -> None:
        """The terminal's input hung up (a tmux pane killed under `bash -c 'virttui; sleep 60'`, whose
        virttui gets no SIGHUP): end as on SIGHUP, rather than poll on for nobody."""
        if self._leave_by is None:
            log.warning("the terminal went away (its input hung up): ending as on SIGHUP")
        self._leave(128 + signal.SIGHUP)

    async def action_quit(self) -> None:
        """q on the main screen: quits, after asking when an action is still under way."""
        running = sorted(self.actions.pending.items())
        if not running:
            await super().action_quit()
            return
        from virttui.screens.confirm import ConfirmScreen

        names = [f"  {label} {getattr(self.fleet.domain(uri, uuid), 'name', uuid)}"
                 for (uri, uuid), label in running[:8]]
        body = (f"{len(running)} action{'s are' if len(running) != 1 else ' is'} still in progress:\n"
                + "\n".join(names) + "\n\nQuitting does not stop them on the host; their results won't show here.")

        def answered(yes: bool | None) -> None:
            if yes:
                self.exit()

        self.push_screen(ConfirmScreen("Quit virttui?", body, yes_label="Quit"), answered)

    def _leave(self, code: int) -> None:
        """End the console now, as q does, with `code`: no poll starts and no poll result is applied
        meanwhile (at 2000 domains the results and their repaints queued ahead of the exit took
        seconds), and hosts still closing and workers still running get until LEAVE_GRACE from now."""
        if self._leave_by is not None:
            return
        self._leave_by = time.monotonic() + LEAVE_GRACE
        self.scheduler.stop()
        if self._worker_threads is not None:
            self._worker_threads.deadline = self._leave_by
        self.exit(return_code=code)

    def _exit_on_signals(self) -> None:
        """SIGTERM (kill, systemctl stop) and SIGHUP (the SSH session or tmux pane gone) end the console as
        q does, with 128 + the signal: the terminal restored, virsh sessions and event streams closed.
        (Textual's driver handles only SIGTSTP, SIGCONT and SIGWINCH: killed, it left the tty raw.)"""
        import asyncio

        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGHUP):
            try:
                loop.add_signal_handler(number, functools.partial(self._leave, 128 + number))
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no such signal
                continue
            self._signals_loop = loop
            self._signals.append(number)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self.collector.key_pressed()
            textual_fixes.paint_eagerly_after_key()
        await super().on_event(event)

    def _show_log(self, screen: Screen) -> None:
        from virttui.widgets.logpane import LogPane, LogPaneHandler

        pane = LogPane()
        screen.mount(pane)
        self._log_handler = LogPaneHandler(self, pane)
        root = logging.getLogger()
        root.addHandler(self._log_handler)
        root.setLevel(min(root.level or logging.INFO, logging.INFO))
        log.info("debug log pane on; the full log is in the log file")

    def on_unmount(self) -> None:
        global _ended_in_terminal
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
        self.collector.stop()
        self.scheduler.stop()
        wait = QUIT_GRACE if self._leave_by is None else max(0.0, self._leave_by - time.monotonic())
        self._close_drivers(self.scheduler.drivers, wait)
        if self._signals_loop is not None:
            for number in self._signals:
                self._signals_loop.remove_signal_handler(number)
        if not self.is_headless:
            _ended_in_terminal = True

    @staticmethod
    def _close_drivers(drivers: list[Driver], wait: float = QUIT_GRACE) -> None:
        """Close every host at once, off the UI thread, waiting `wait` seconds at most: a host mid-poll
        or unreachable must not freeze the screen on q (a close could wait out a 30 s command)."""
        from virttui.runtime.polling import close_driver

        threads = [threading.Thread(target=close_driver, args=(d,), name=f"close {d.uri}", daemon=True)
                   for d in drivers]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + wait
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for driver, thread in zip(drivers, threads, strict=True):
            if thread.is_alive():
                # Still closing (a connect under way holds the host's lock): a second close, the
                # CLI's on its way out, would wait on the same host, after the console has gone.
                driver.close = _closing_already  # type: ignore[method-assign]

    def _forget_host(self, uri: str) -> None:
        """A removed host: its shown warnings; added again, it starts afresh."""
        self._warned = {(u, warning) for u, warning in self._warned if u != uri}
        self._host_errors.pop(uri, None)
        done = self._refresh.forget(uri)
        if done:
            self.notify(done, timeout=4, markup=False)

    # -- poll results --------------------------------------------------------
    @contained
    def on_host_polled(self, message: HostPolled) -> None:
        if not self.scheduler.owns(message.snapshot.host.uri, message.seq):
            return  # the host was removed while this poll ran
        self.scheduler.finished(message.snapshot.host.uri, ok=True)
        self._refresh_answered(message.snapshot.host.uri, ok=True)
        self.fleet.apply(message.snapshot)
        self.actions.host_polled(message.snapshot.host.uri, message.seq)
        self.essentials.host_polled(message.snapshot.host.uri, message.seq)
        host = message.snapshot.host
        if self._host_errors.pop(host.uri, None) is not None:
            self.activity.record(f"{host.label}: connected again")
        for warning in host.warnings:
            if (host.uri, warning) not in self._warned:
                self._warned.add((host.uri, warning))
                self.notify(f"{host.label}: {warning}", severity="warning", timeout=10, markup=False)
        self.broadcast_fleet()

    @contained
    def refresh_now(self) -> None:
        """Ctrl+R: poll every host now; say so, and again once they all answered."""
        self.notify(self._refresh.start(self.fleet.uris), timeout=3, markup=False)
        self.scheduler.poll_all()

    def _refresh_answered(self, uri: str, ok: bool) -> None:
        done = self._refresh.answered(uri, ok)
        if done:
            self.notify(done, severity="information" if "failed" not in done else "warning", timeout=4,
                        markup=False)

    def on_host_failed(self, message: HostFailed) -> None:
        if not self.scheduler.owns(message.host.uri, message.seq):
            return
        delay = self.scheduler.finished(message.host.uri, ok=False)
        self._refresh_answered(message.host.uri, ok=False)
        # the host as last seen (its name, CPUs, memory), now in error: not a bare URI row
        known = self.fleet.host(message.host.uri)
        error = self.host_keys.explain(message.host.uri, message.host.last_error)
        failed = replace(known, state=message.host.state, last_error=error, poll_latency_ms=None)
        self.fleet.set_host(self.scheduler.with_retry(failed, delay))
        if self._host_errors.get(message.host.uri) != error:  # the Hosts pane shows it; the record keeps it once
            self._host_errors[message.host.uri] = error
            self.activity.record(f"{known.label}: {error}", "error")
        self.actions.host_polled(message.host.uri, message.seq)
        self.essentials.host_polled(message.host.uri, message.seq)
        self.host_keys.check(message.host.uri)
        self.broadcast_fleet()

    @contained
    def on_host_changed(self, message: HostChanged) -> None:
        """The host's event stream saw a change made anywhere: show it now, not at the next tick."""
        if self.scheduler.has(message.uri) and self.fleet.host(message.uri).state is ConnectionState.CONNECTED:
            self.scheduler.poll_on_event(message.uri)

    @contained
    def on_action_finished(self, message: ActionFinished) -> None:
        self.actions.finished(message)
        self.broadcast_fleet()

    @contained
    def on_essential_finished(self, message: EssentialFinished) -> None:
        self.essentials.finished(message)

    def broadcast_fleet(self) -> None:
        """Tell every screen on the stack that the fleet changed."""
        if self._leave_by is not None:
            return  # a repaint nobody will see, ahead of the exit
        for screen in self.screen_stack:
            screen.post_message(FleetUpdated())

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that died of an unexpected error: log it, show one line, keep running."""
        if event.state is WorkerState.ERROR:
            self._worker_failed(event.worker.name, event.worker.error)

    def _worker_failed(self, name: str, error: BaseException | None) -> None:
        log.error("worker %s failed", name, exc_info=error)
        self.notify(f"internal error in {name}: {error}", severity="error", markup=False)

    def report_error(self, error: Exception) -> None:
        """An unexpected exception from a handler or action: log it, say it in one line, carry on."""
        if self._containment is None:
            raise error  # tests: let the bug surface
        if self._containment.absorb(error):
            self.notify(one_line(error), severity="error", timeout=10, markup=False)  # recorded by notify
        else:
            self.fatal_message = one_line(error)
            self.activity.record(self.fatal_message, "error")
            self.exit(return_code=70)

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Show a notification, and keep it in the activity log (L): a toast is gone in seconds."""
        text = _plain(message) if markup else message
        self.activity.record(f"{title}: {text}" if title else text, severity)
        super().notify(message=message, title=title, severity=severity, timeout=timeout, markup=markup)

    def record(self, text: str, severity: SeverityLevel = "information") -> None:
        """A line in the activity record only: progress that the rows already show."""
        self.activity.record(text, severity)

    def action_activity(self) -> None:
        """L: the activity log, every line recorded so far, live."""
        from virttui.screens.activity import ActivityScreen

        if not isinstance(self.screen, ActivityScreen):
            self.push_screen(ActivityScreen(self.activity))

    async def _dispatch_action(self, namespace, action_name, params) -> bool:  # noqa: ANN001
        """Every key runs an action: contain what one raises (Textual would stop that screen's loop)."""
        if self._containment is None:
            return await super()._dispatch_action(namespace, action_name, params)
        try:
            return await super()._dispatch_action(namespace, action_name, params)
        except Exception as error:  # noqa: BLE001 - the containment point for keys
            self.report_error(error)
            return True

    def _handle_exception(self, error: Exception) -> None:
        """Last resort, where nothing contained the error: exit with one line, never a traceback."""
        if self._containment is None:
            super()._handle_exception(error)
            return
        self._containment.absorb(error)
        self.fatal_message = one_line(error)
        self._return_code = 70
        self._close_messages_no_wait()

    # -- lease cleanup ---------------------------------------------------------
    def open_cleanup(self, host_uri: str | None) -> None:
        """Preview the removable lease files of a host's directory, read afresh, and offer to remove them."""
        uris = [host_uri] if host_uri else self.fleet.uris
        for uri in uris:
            manager = self.scheduler.driver(uri).lease_manager()
            snap = self.fleet.snapshot(uri)
            if manager is None or snap is None or snap.leases is None:
                continue
            if self.fleet.host(uri).state is not ConnectionState.CONNECTED:
                continue  # its last snapshot is stale, and the cleanup would go to a host that is not there
            from virttui.locks.embedded import EmbeddedLeaseStore

            if isinstance(manager, EmbeddedLeaseStore):  # in this process, and quick: no wait to show
                self._preview_cleanup(uri, manager, manager.snapshot())
                return

            self.notify(f"reading {self.fleet.host(uri).label}'s lease directory…", timeout=3, markup=False)
            # never the polls' view: a file may have changed since its last pass
            run_blocking(self, manager.snapshot, LeaseDirRead.tagged((uri, manager)), group="cleanup preview",
                         exclusive=True)
            return
        self.notify("no host with a lease directory is connected", severity="warning", markup=False)

    @contained
    def on_lease_dir_read(self, message: LeaseDirRead) -> None:
        uri, manager = message.tag
        if message.error is not None:
            self._worker_failed("", message.error)  # as an error of its worker was reported
            return
        self._preview_cleanup(uri, manager, cast(LeaseDirSnapshot, message.value))

    def _preview_cleanup(self, uri: str, manager, fresh: LeaseDirSnapshot) -> None:  # noqa: ANN001
        from virttui.screens.cleanup import CleanupScreen

        if not self.fleet.has(uri) or self.fleet.host(uri).state is not ConnectionState.CONNECTED:
            return  # removed or failed while its directory was read
        candidates = [status for status in self.fleet.fresh_lease_rows(uri, fresh) if status.state in CLEANABLE]

        def done(removed: int | None, uri: str = uri) -> None:
            if removed:
                self.notify(f"lease cleanup removed {removed} file{'s' if removed != 1 else ''}", markup=False)
            self.scheduler.poll_now(uri)

        self.push_screen(CleanupScreen(manager, self.fleet.host(uri).label, candidates), done)

    # -- command palette -------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette: every action and view of the screen (console/palette.py), not Textual's own entries."""
        from virttui.console.palette import palette_entries

        for title, help_text, callback in palette_entries(self, screen):
            yield SystemCommand(title, help_text, callback)


def _plain(markup: str) -> str:
    """A notification's markup as the text the toast shows; the raw text if it is not valid markup."""
    from textual.content import Content

    try:
        return Content.from_markup(markup).plain
    except Exception:  # noqa: BLE001 - a bad markup must not stop the notification it came with
        return markup


def _closing_already() -> None:
    """Stands in for the close of a host whose close has run past the console's end, on its thread."""

"""Security review findings: trust-prompt fatigue, a terminal gone without SIGHUP, a prompt exit at 2000 domains.

(Event storms are in test_polling.py, with the rest of the scheduler.)
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.app import make_app, poll, settle

from virttui.screens.confirm import TrustScreen


# -- trust-prompt fatigue ------------------------------------------------------------------------------
def _rotating_host_key(driver) -> list:  # noqa: ANN001
    """Every connect of `driver` meets a new unknown host key, as from a host rotating its key."""
    import paramiko

    from virttui.drivers.sshhostkeys import UnknownHostKey

    seen: list[UnknownHostKey] = []

    def connect_fails() -> None:
        seen.append(UnknownHostKey("hv2", paramiko.ECDSAKey.generate(), "/nonexistent/known_hosts"))
        raise seen[-1]

    driver.poll = connect_fails
    driver.pending_host_key = lambda: seen[-1] if seen else None
    driver.trust_host_key = lambda pending: None
    return seen


async def test_a_declined_host_key_is_not_asked_about_again_until_the_operator_asks(demo, clock):
    """A host rotating its key met a new unknown key on every retry and reopened the dialog after each
    refusal. Declined once, it shows its error and stays quiet; K (or the palette) asks again."""
    app = make_app(demo)
    hv2 = demo.drivers[1]
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        seen = _rotating_host_key(hv2)
        await poll(pilot, clock)
        assert isinstance(app.screen, TrustScreen)
        await pilot.press("n")
        await settle(pilot)
        assert not isinstance(app.screen, TrustScreen)
        for _ in range(3):  # retries, each with a new key
            await poll(pilot, clock)
            assert not isinstance(app.screen, TrustScreen)
        assert len(seen) == 4
        error = app.fleet.host(hv2.uri).last_error
        assert "declined; press K to review" in error and seen[-1].fingerprint in error

        await pilot.press("K")  # the operator asks again: about the key the latest retry met
        await settle(pilot)
        assert isinstance(app.screen, TrustScreen)
        assert seen[-1].fingerprint in str(app.screen.query_one("#dialog-body").render())
        await pilot.press("n")
        await settle(pilot)
        await poll(pilot, clock)
        assert not isinstance(app.screen, TrustScreen)

        commands = [c for c in app.get_system_commands(app.screen) if "host key" in c.title]
        assert [c.title for c in commands] == ["Ask again about hv2's host key"]
        commands[0].callback()
        await settle(pilot)
        assert isinstance(app.screen, TrustScreen)


# -- real terminals: a pty the test reads, as a terminal emulator would --------------------------------
def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "50", "HOME": str(home),
           "XDG_CONFIG_HOME": str(home / ".config"), "XDG_STATE_HOME": str(home / ".local" / "state")}
    env.pop("LIBVIRT_DEFAULT_URI", None)
    return env


def _block_sighup() -> None:
    """In the child: SIGHUP held pending for good (a handler installed later changes nothing), so
    only the terminal's end itself can end the console."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})


class _Terminal:
    """The master side of a pty running a command: what it printed, read as it comes."""

    def __init__(self, argv: list[str], env: dict[str, str], **popen) -> None:  # noqa: ANN003
        self.fd, child = os.openpty()
        self.proc = subprocess.Popen(argv, stdin=child, stdout=child, stderr=child, env=env,
                                     start_new_session=True, **popen)
        os.close(child)
        self.out = b""

    def read_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and self.fd >= 0:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                try:
                    self.out += os.read(self.fd, 65536)
                except OSError:  # EIO: the child has gone and its side closed
                    return

    def wait_for(self, condition, timeout: float, what: str) -> None:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"no {what} within {timeout} s; the tail: {self.out[-300:]!r}"
            assert self.proc.poll() is None, f"exited {self.proc.returncode} before {what}: {self.out[-2000:]!r}"
            self.read_for(0.1)

    def exit_time(self, limit: float) -> float:
        """Seconds until the child exits (reading its output meanwhile); it is killed past `limit`."""
        started = time.monotonic()
        while self.proc.poll() is None and time.monotonic() - started < limit:
            self.read_for(0.05) if self.fd >= 0 else time.sleep(0.05)
        took = time.monotonic() - started
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        return took

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def test_the_console_ends_when_its_terminal_goes_away_without_a_sighup(tmp_path):
    """`bash -c 'virttui; sleep 60'` in a tmux pane that is killed: the pty goes, and no SIGHUP reaches
    virttui. Its input hangs up (EOF; EIO for a read under way): it ends as on SIGHUP, within 3 s.
    Before, Textual's input thread spun on EOF and the console polled on forever."""
    log = tmp_path / "virttui.log"
    term = _Terminal([sys.executable, "-m", "virttui", "--demo", "--log", str(log)], _env(tmp_path),
                     preexec_fn=_block_sighup)
    try:
        term.wait_for(lambda: b"web-01" in term.out, 60, "first screen")
        term.read_for(0.5)
        os.close(term.fd)  # the terminal emulator is gone
        term.fd = -1
        took = term.exit_time(limit=10)
    finally:
        term.close()
    assert took < 3, f"still running {took:.1f} s after its terminal went away"
    assert term.proc.returncode == 128 + signal.SIGHUP  # as on SIGHUP (Textual's panic exited 1)
    text = log.read_text()
    assert "the terminal went away" in text and "Traceback" not in text


def test_a_read_error_on_the_terminal_ends_the_console_as_on_sighup(monkeypatch):
    """EIO from a read under way (the pty's other side closed between select and read): Textual's input
    thread let it out and panicked with a traceback. Now the console ends as on SIGHUP, and nothing more
    is written (the writer thread dies of EIO too; writes queued behind it would block once it is full)."""
    import errno

    from textual.drivers.linux_driver import LinuxDriver

    from virttui.runtime.terminal import hangup_aware_driver as _hangup_aware_driver

    def read_fails(self) -> None:  # noqa: ANN001
        raise OSError(errno.EIO, "Input/output error")

    written: list[str] = []
    monkeypatch.setattr(LinuxDriver, "run_input_thread", read_fails)
    monkeypatch.setattr(LinuxDriver, "write", lambda self, data: written.append(data))
    ended: list[bool] = []

    class Loop:
        def call_soon_threadsafe(self, callback) -> None:  # noqa: ANN001
            callback()

    class App:
        def terminal_gone(self) -> None:
            ended.append(True)

    driver = object.__new__(_hangup_aware_driver())  # only what the input thread uses, no terminal
    driver._loop, driver._app = Loop(), App()  # noqa: SLF001
    driver.write("before")
    driver.run_input_thread()
    driver.run_input_thread()
    driver.write("after")
    assert ended == [True] and written == ["before"]


def test_a_host_still_closing_when_the_console_ends_is_not_waited_for_again():
    """A host mid-connect holds its lock (an SSH connect waits up to its timeout): the console's close
    gives up on it after its grace, and the CLI's close of every host on its way out returns at once
    instead of waiting on the same host after the screen has gone."""
    import threading

    from virttui.console.app import VirtTUI

    release = threading.Event()

    class Connecting:
        uri = "qemu+ssh://hv9/system"

        def unwatch(self) -> None:
            pass

        def close(self) -> None:
            release.wait(30)

    host = Connecting()
    started = time.monotonic()
    VirtTUI._close_drivers([host], wait=0.2)  # noqa: SLF001
    again = threading.Thread(target=host.close, daemon=True)
    again.start()
    again.join(2)
    release.set()
    assert not again.is_alive() and time.monotonic() - started < 2


STUCK_POLL = """
import os, sys, time
from virttui.drivers.testdriver import TestDriver
go, stuck, uri = sys.argv[1:4]
real_poll = TestDriver.poll

def poll(self):  # a host that stops answering mid-poll (unreachable: a 30 s command timeout)
    if self.uri == uri and os.path.exists(go):
        open(stuck, "w").close()
        time.sleep(120)
    return real_poll(self)

TestDriver.poll = poll
sys.argv = ["virttui", *sys.argv[4:]]
import virttui.runtime.launch
raise SystemExit(virttui.runtime.launch.main())
"""


@pytest.mark.parametrize("how", ["SIGTERM", "SIGHUP"])
def test_a_signal_ends_the_console_within_3_s_at_2000_domains(tmp_path, how):
    """20 embedded hosts × 100 domains on a shared lease directory (the scale benchmark's fleet), one
    host stuck mid-poll: SIGTERM or SIGHUP ends the console within 3 s, the terminal restored. Before,
    the exit waited for every poll still running (asyncio.run joins its thread workers), behind the
    poll results and repaints queued ahead of it, then for the teardown of the 2000-domain heap."""
    from bench.fleet import FULL, fleet_files

    go, stuck = tmp_path / "go", tmp_path / "stuck"
    with fleet_files(FULL, leases=True) as uris:
        args = [arg for uri in uris for arg in ("-c", uri)]
        term = _Terminal([sys.executable, "-c", STUCK_POLL, str(go), str(stuck), uris[3], *args,
                          "--log", str(tmp_path / "virttui.log")], _env(tmp_path))
        try:
            term.wait_for(lambda: "· 2000".encode() in term.out, 120, "2000 domains shown")
            go.touch()
            term.wait_for(stuck.exists, 30, "the stuck poll")
            term.read_for(0.3)
            shown = len(term.out)
            term.proc.send_signal(getattr(signal, how))
            took = term.exit_time(limit=15)
            term.read_for(0.2)
        finally:
            term.close()
    assert took < 3, f"{how} took {took:.1f} s to end the console"
    assert term.proc.returncode == 128 + getattr(signal, how)
    assert b"\x1b[?1049l" in term.out[shown:]  # left the alternate screen: the terminal restored
    assert b"Traceback" not in term.out

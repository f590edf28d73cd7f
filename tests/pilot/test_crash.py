"""Crash safety: an unexpected exception is logged and shown in one line; the console keeps running."""

from __future__ import annotations

import logging

import pytest
from support.app import settle

from virttui.console.app import VirtTUI
from virttui.screens.main import MainScreen


def boom(self) -> None:  # noqa: ANN001
    raise RuntimeError("kaboom\nwith a second line")


async def test_an_unexpected_error_is_one_notification_and_the_app_runs_on(demo, monkeypatch, caplog):
    monkeypatch.setattr(MainScreen, "action_help", boom)
    app = VirtTUI(demo.drivers, autopoll=False, contain_errors=True)
    with caplog.at_level(logging.ERROR, logger="virttui.runtime.crash"):
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await pilot.press("?")
            await settle(pilot)
            notes = [n.message for n in app._notifications]  # noqa: SLF001
            assert any(m.startswith("internal error: RuntimeError: kaboom with a second line") for m in notes)
            assert all("\n" not in m for m in notes)
            await pilot.press("j")  # still answering keys
            assert app.is_running
    assert "Traceback" in caplog.text and "kaboom" in caplog.text


async def test_an_error_that_keeps_coming_ends_the_app_with_one_line(demo, monkeypatch):
    monkeypatch.setattr(MainScreen, "action_help", boom)
    app = VirtTUI(demo.drivers, autopoll=False, contain_errors=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for _ in range(5):
            await pilot.press("?")
        await pilot.pause()
    assert app.return_code == 70
    assert app.fatal_message.startswith("internal error: RuntimeError: kaboom")


async def test_an_error_while_showing_host_data_leaves_the_screen_working(demo, monkeypatch, clock):
    from support.app import poll

    calls = {"n": 0}
    original = MainScreen._refresh_leases

    def flaky(self) -> None:  # noqa: ANN001
        calls["n"] += 1
        if calls["n"] == 2:
            raise ValueError("a surprise from a host")
        original(self)

    monkeypatch.setattr(MainScreen, "_refresh_leases", flaky)
    app = VirtTUI(demo.drivers, autopoll=False, contain_errors=True)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(4):
            await poll(pilot, clock)
        assert calls["n"] >= 4  # the screen kept handling fleet updates after the failure
        assert any("surprise" in n.message for n in app._notifications)  # noqa: SLF001


@pytest.mark.parametrize("how", ["q", "SIGTERM", "SIGHUP"])
def test_the_terminal_is_restored_on_exit_in_a_real_terminal(tmp_path, how):
    """A real pty: quit with q, or be killed (kill, systemctl stop: SIGTERM) or hung up on (the SSH session or
    tmux pane gone: SIGHUP); the alternate screen is left and the cursor shown again either way."""
    import os
    import pty
    import select
    import signal
    import subprocess
    import sys
    import time

    main_fd, child_fd = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30", "HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "virttui", "--demo", "--log", str(tmp_path / "log")],
                            stdin=child_fd, stdout=child_fd, stderr=child_fd, env=env, start_new_session=True)
    os.close(child_fd)
    out = b""
    deadline = time.monotonic() + 50

    def read_for(seconds: float, *, until_exit: bool = False) -> None:
        nonlocal out
        end = min(deadline, time.monotonic() + seconds)
        while time.monotonic() < end and not (until_exit and proc.poll() is not None):
            ready, _, _ = select.select([main_fd], [], [], 0.1)
            if ready:
                try:
                    out += os.read(main_fd, 65536)
                except OSError:  # EIO: the console closed the terminal, and may still be exiting
                    if not until_exit:
                        return
                    time.sleep(0.05)

    try:
        while b"web-01" not in out and time.monotonic() < deadline:
            read_for(0.5)
        assert b"web-01" in out
        if how == "q":
            os.write(main_fd, b"q")
        else:
            proc.send_signal(getattr(signal, how))
        # read while it exits, as a terminal does: an exiting process whose pty nobody reads could sit
        # in the kernel's exit for 20 s and more (seen in about one run in eight)
        read_for(20, until_exit=True)
        proc.wait(timeout=1)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main_fd)
    assert proc.returncode == {"q": 0, "SIGTERM": 143, "SIGHUP": 129}[how]  # 128 + the signal, as a shell reports it
    tail = out[out.rfind(b"web-01"):]
    assert b"\x1b[?1049l" in tail  # left the alternate screen
    assert b"Traceback" not in out


async def test_debug_shows_the_log_in_a_pane(demo):
    from virttui.widgets.logpane import LogPane

    app = VirtTUI(demo.drivers, autopoll=False, contain_errors=True, debug=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        logging.getLogger("virttui.test").warning("a line for the pane")
        await pilot.pause()
        pane = app.screen.query_one(LogPane)
        text = "\n".join(str(line.text) for line in pane.lines)
        assert "debug log pane on" in text and "a line for the pane" in text
    assert app._log_handler not in logging.getLogger().handlers  # noqa: SLF001


async def test_quitting_does_not_wait_for_a_host_that_will_not_close(demo):
    """A host mid-poll or unreachable can take its whole command timeout to close: q must not freeze the
    screen that long. The closes run at once, off the UI thread, for a few seconds at most."""
    import threading
    import time

    from support.app import make_app

    release = threading.Event()
    stuck = demo.drivers[1]
    stuck.close = lambda: release.wait(60)  # noqa: ARG005
    closed = []
    others = [d for d in demo.drivers if d is not stuck]
    for driver in others:
        original = driver.close
        driver.close = lambda original=original, driver=driver: (closed.append(driver.uri), original())
    app = make_app(demo)
    started = None
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        started = time.monotonic()
        await pilot.press("q")
    took = time.monotonic() - started
    release.set()
    assert took < 15 and sorted(closed) == sorted(d.uri for d in others)

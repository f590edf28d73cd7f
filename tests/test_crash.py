"""Crash safety: an unexpected exception is logged and shown in one line; the console keeps running."""

from __future__ import annotations

import logging

from helpers import settle

from virttui.app import VirtTUI
from virttui.screens.main import MainScreen


def boom(self) -> None:  # noqa: ANN001
    raise RuntimeError("kaboom\nwith a second line")


async def test_an_unexpected_error_is_one_notification_and_the_app_runs_on(demo, monkeypatch, caplog):
    monkeypatch.setattr(MainScreen, "action_help", boom)
    app = VirtTUI(demo.drivers, autopoll=False, contain_errors=True)
    with caplog.at_level(logging.ERROR, logger="virttui.crash"):
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
    from helpers import poll

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


def test_the_terminal_is_restored_on_exit_in_a_real_terminal(tmp_path):
    """A real pty: quit with q; the alternate screen is left and the cursor shown again."""
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    main_fd, child_fd = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30", "HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "virttui", "--demo", "--log", str(tmp_path / "log")],
                            stdin=child_fd, stdout=child_fd, stderr=child_fd, env=env, start_new_session=True)
    os.close(child_fd)
    out = b""
    deadline = time.monotonic() + 30

    def read_for(seconds: float) -> None:
        nonlocal out
        end = min(deadline, time.monotonic() + seconds)
        while time.monotonic() < end:
            ready, _, _ = select.select([main_fd], [], [], 0.1)
            if ready:
                try:
                    out += os.read(main_fd, 65536)
                except OSError:
                    return

    try:
        while b"web-01" not in out and time.monotonic() < deadline:
            read_for(0.5)
        assert b"web-01" in out
        os.write(main_fd, b"q")
        proc.wait(timeout=20)
        read_for(0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main_fd)
    assert proc.returncode == 0
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

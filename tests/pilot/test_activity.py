"""The activity log (L): what was done and what went wrong, kept after the notifications are gone."""

from __future__ import annotations

import logging

import pytest
from support.app import lost_connection, poll, settle
from support.pilot import open_detail, select

from virttui.console.app import VirtTUI
from virttui.screens.activity import ActivityScreen, ActivityView
from virttui.screens.detail import DomainDetailScreen
from virttui.screens.main import MainScreen


def shown(app) -> list[str]:
    """The activity screen's lines as the operator reads them."""
    return [strip.text.rstrip() for strip in app.screen.query_one(ActivityView).lines]


async def open_activity(pilot) -> None:
    await pilot.press("L")
    await settle(pilot)
    assert isinstance(pilot.app.screen, ActivityScreen)


async def test_a_started_domain_is_in_the_activity_log_and_esc_closes_it(app, demo):
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "build-runner")
        await pilot.press("s")
        await settle(pilot)
        await open_activity(pilot)
        line = next(line for line in shown(pilot.app) if "Start build-runner on hv1: done" in line)
        time, mark, text = line.split(" ", 2)
        assert len(time) == 8 and time[2] == time[5] == ":"
        assert (mark, text) == ("·", "Start build-runner on hv1: done, running")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(pilot.app.screen, MainScreen)


async def test_errors_from_hosts_are_kept_marked_as_errors(app, demo, clock):
    """A failed action (its toast gone after 10 s) and a host lost, each marked ✗, not by colour alone."""
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "web-standby")
        await pilot.press("s")  # its disk's lease is web-01's
        await settle(pilot)
        demo.drivers[1].poll = lost_connection
        await poll(pilot, clock)
        await poll(pilot, clock)  # failing again with the same error: recorded once
        assert pilot.app._notifications
        await open_activity(pilot)
        assert not pilot.app._notifications  # their toasts would hide the lines that hold them
        lines = shown(pilot.app)
        assert any(line[9:].startswith("✗ Start web-standby on hv2 failed: ") for line in lines)
        assert sum("✗ hv2: ssh: connection reset" in line for line in lines) == 1
        assert [e.severity for e in pilot.app.activity.entries() if e.text == "hv2: ssh: connection reset"] == ["error"]


async def test_a_host_back_is_recorded(app, demo, clock):
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        hv2 = demo.drivers[1]
        real_poll, hv2.poll = hv2.poll, lost_connection
        await poll(pilot, clock)
        hv2.poll = real_poll
        await poll(pilot, clock)
        texts = [entry.text for entry in pilot.app.activity.entries()]
        assert texts[-2:] == ["hv2: ssh: connection reset", "hv2: connected again"]


async def test_every_notification_is_recorded_as_plain_text_and_logged(app, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="virttui.activity")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        pilot.app.notify("[b]web-01[/b] from a host", severity="warning", markup=False)
        pilot.app.notify("[b]bold[/b] by the console", title="Note")
        pilot.app.screen.notify("from a screen", severity="error")
        await open_activity(pilot)
        lines = shown(pilot.app)
        assert lines[-3][9:] == "! [b]web-01[/b] from a host"  # never read as markup
        assert lines[-2][9:] == "· Note: bold by the console"
        assert lines[-1][9:] == "✗ from a screen"
    assert [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "virttui.activity"][-3:] == [
        ("WARNING", "[b]web-01[/b] from a host"), ("INFO", "Note: bold by the console"), ("ERROR", "from a screen")]


async def test_it_updates_live_follows_the_newest_line_and_scrolls_with_keys(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_activity(pilot)
        view = pilot.app.screen.query_one(ActivityView)
        for n in range(60):
            pilot.app.notify(f"line {n}")
        await settle(pilot)
        assert shown(pilot.app)[-1].endswith("· line 59")
        assert view.scroll_y == view.max_scroll_y > 0  # the newest line in view
        await pilot.press("k", "k", "pageup")
        await settle(pilot)
        held = view.scroll_y
        assert held < view.max_scroll_y
        pilot.app.notify("line 60")
        await settle(pilot)
        assert shown(pilot.app)[-1].endswith("· line 60")
        assert view.scroll_y == held  # scrolled up to read: a new line does not pull the view away
        await pilot.press("g")
        await settle(pilot)
        assert view.scroll_y == 0
        await pilot.press("j", "pagedown")
        await settle(pilot)
        assert 0 < view.scroll_y < view.max_scroll_y
        await pilot.press("G")
        await settle(pilot)
        assert view.scroll_y == view.max_scroll_y
        pilot.app.notify("line 61")
        await settle(pilot)
        assert view.scroll_y == view.max_scroll_y  # at the bottom again: it follows again


async def test_q_and_l_close_it_and_l_opens_it_from_the_detail_screen(app, demo):
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_activity(pilot)
        await pilot.press("q")  # closes the activity screen, does not quit
        await pilot.pause()
        assert isinstance(pilot.app.screen, MainScreen)
        await open_detail(pilot, demo, "web-01")
        await open_activity(pilot)
        await pilot.press("L")
        await pilot.pause()
        assert isinstance(pilot.app.screen, DomainDetailScreen)


async def test_the_command_palette_offers_the_activity_log(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        commands = {c.title: c for c in pilot.app.get_system_commands(pilot.app.screen)}
        commands["Activity"].callback()
        await settle(pilot)
        assert isinstance(pilot.app.screen, ActivityScreen)


async def test_an_empty_log_says_so(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_activity(pilot)
        assert shown(pilot.app) == ["nothing recorded yet"]
        pilot.app.notify("first")
        await settle(pilot)
        assert [line[9:] for line in shown(pilot.app)] == ["· first"]


async def test_the_consoles_own_errors_are_recorded(demo):
    app = VirtTUI(demo.drivers, autopoll=False, contain_errors=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.report_error(RuntimeError("boom"))
        await settle(pilot)
        last = app.activity.entries()[-1]
        assert last.severity == "error" and last.text.startswith("internal error: RuntimeError: boom")


async def test_long_lines_wrap_under_their_text_within_80_columns(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        pilot.app.notify("word " * 40, markup=False)
        await open_activity(pilot)
        lines = shown(pilot.app)
        assert len(lines) >= 3
        view = pilot.app.screen.query_one(ActivityView)
        assert all(len(line) <= view.scrollable_content_region.width for line in lines)
        assert all(line.startswith(" " * 11 + "word") for line in lines[1:])


async def test_a_wider_terminal_rewraps_the_lines(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        pilot.app.notify("word " * 40, markup=False)
        await open_activity(pilot)
        narrow = len(shown(pilot.app))
        await pilot.resize_terminal(160, 40)
        await settle(pilot)
        lines = shown(pilot.app)
        assert len(lines) < narrow
        assert max(map(len, lines)) > 80

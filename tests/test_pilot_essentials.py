"""Keys for the operator essentials, pressed in the real app against the embedded hosts."""

from __future__ import annotations

from helpers import make_app, settle
from test_pilot import host_of, select

from virttui.drivers.model import DomainState
from virttui.screens.confirm import ConfirmScreen
from virttui.screens.detail import DomainDetailScreen
from virttui.screens.prompt import PromptScreen


async def test_a_toggles_autostart(demo):
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "mail")
        before = host_of(demo, "mail")[1].autostart
        await pilot.press("a")
        await settle(pilot)
        assert host_of(demo, "mail")[1].autostart is (not before)


async def test_undefine_asks_for_the_name_and_only_then_undefines(demo):
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "build-runner")
        await pilot.press("U")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*"wrong", "enter")
        await settle(pilot)
        assert host_of(demo, "build-runner")  # still there
        await select(pilot, demo, "build-runner")
        await pilot.press("U")
        await pilot.pause()
        await pilot.press(*"build-runner", "enter")
        await settle(pilot)
        assert "build-runner" not in {d.name for drv in demo.drivers for d in drv.poll().domains}


async def test_snapshot_create_revert_delete_from_the_detail_screen(demo):
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        driver, dom = host_of(demo, "web-01")
        await select(pilot, demo, "web-01")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DomainDetailScreen)
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*"before", "enter", *"known good", "enter")
        await settle(pilot)
        assert [(s.name, s.description) for s in driver.snapshots(dom.uuid)] == [("before", "known good")]
        assert app.screen.query_one("#snapshots").row_count == 1
        await pilot.press("f")  # force off, then revert brings it back running
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert host_of(demo, "web-01")[1].state is DomainState.SHUT_OFF
        await pilot.press("v")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        assert host_of(demo, "web-01")[1].state is DomainState.RUNNING
        await pilot.press("delete")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert driver.snapshots(dom.uuid) == []


async def test_memory_stats_period_and_used_memory(demo):
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        driver, dom = host_of(demo, "db-primary")
        await select(pilot, demo, "db-primary")
        await pilot.press("enter")
        await settle(pilot)
        head = str(app.screen.query_one("#detail-head").render())
        assert "used" in head
        await pilot.press("m")
        await pilot.pause()
        await pilot.press("backspace", *"10", "enter")
        await settle(pilot)
        guest = driver._guests[dom.uuid]  # noqa: SLF001 - the embedded host's own record
        assert guest.memory_stats_period == 10


async def test_console_on_an_embedded_host_says_why_not(demo):
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "mail")
        await pilot.press("c")
        await settle(pilot)
        assert any("no serial console" in n.message for n in app._notifications)  # noqa: SLF001

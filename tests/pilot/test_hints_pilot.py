"""Keys pressed in the real app: hints that name the way out, w wakes a pmsuspended guest, and the Leases
pane follows a forced-off guest before its host's next poll."""

from __future__ import annotations

from support.app import settle
from support.pilot import host_of, select

from virttui.drivers.model import DomainState
from virttui.locks.naming import sanlock_lease_name
from virttui.widgets.panes import KEY_SEP, LeasesTable


def messages(app) -> list[str]:  # noqa: ANN001 - the VirtTUI under test
    return [n.message for n in app._notifications]  # noqa: SLF001 - what the operator was shown


async def test_s_on_a_crashed_guest_says_to_force_it_off_first(app, demo):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "ci-agent")
        await pilot.press("s")
        await settle(pilot)
        assert "Start: ci-agent is crashed: f (force off) first" in messages(pilot.app)
        assert host_of(demo, "ci-agent")[1].state is DomainState.CRASHED


async def test_w_wakes_a_pmsuspended_guest_and_is_in_the_palette(app, demo):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        titles = [command.title for command in pilot.app.get_system_commands(pilot.app.screen)]
        assert "Wake domain" in titles
        await select(pilot, demo, "legacy-app")
        assert pilot.app.screen.check_action("domain", ("pmwakeup",)) is True
        await pilot.press("w")
        await settle(pilot)
        assert host_of(demo, "legacy-app")[1].state is DomainState.RUNNING
        assert pilot.app.screen.selected_domain()[1].state is DomainState.RUNNING
        assert pilot.app.screen.check_action("domain", ("pmwakeup",)) is None  # running: nothing to wake


async def test_the_leases_pane_frees_a_forced_off_guests_lease_before_the_next_poll(app, demo, monkeypatch):
    name = sanlock_lease_name("/var/lib/libvirt/images/web-01.qcow2")

    def lease_state() -> str:
        directory = pilot.app.fleet.lease_dir_of(demo.drivers[0].uri)
        return pilot.app.screen.query_one(LeasesTable).get_row(f"{directory}{KEY_SEP}{name}")[0].text

    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert lease_state() == "held"
        monkeypatch.setattr(pilot.app.scheduler, "poll_now", lambda uri: None)  # the follow-up poll is late
        await select(pilot, demo, "web-01")
        await pilot.press("f")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert pilot.app.screen.selected_domain()[1].state is DomainState.SHUT_OFF
        assert lease_state() == "free"

"""Keys for the operator essentials, pressed in the real app against the embedded hosts."""

from __future__ import annotations

import threading

from support.app import make_app, poll, settle
from support.pilot import host_of, open_detail, select
from textual.worker import WorkerState

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
        assert isinstance(app.screen, PromptScreen)  # a typo keeps the dialog open, to be fixed
        await pilot.press(*["backspace"] * 5, *"build-runner", "enter")
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
        await pilot.press(*"before", "tab", *"known good", "enter")
        await settle(pilot)
        assert [(s.name, s.description) for s in driver.snapshots(dom.uuid)] == [("before", "known good")]
        assert app.screen.query_one("#snapshots").row_count == 1
        await pilot.press("n")  # the same name again: refused in the dialog, not by the hypervisor later
        await pilot.pause()
        await pilot.press(*"before", "enter")  # Enter in the Name field: Create
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)
        assert "a snapshot of that name exists" in str(app.screen.query_one("#prompt-error").render())
        await pilot.press("escape")
        await settle(pilot)
        assert len(driver.snapshots(dom.uuid)) == 1
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


async def test_a_digit_that_is_not_ascii_is_refused_by_the_period_dialog(demo):
    """"²" is a digit to str.isdigit() but not to int(): the dialog says so and the app lives on."""
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        driver, dom = host_of(demo, "db-primary")
        before = driver._guests[dom.uuid].memory_stats_period  # noqa: SLF001
        await select(pilot, demo, "db-primary")
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("m")
        await pilot.pause()
        await pilot.press("backspace", "backspace", "backspace", "²", "enter")
        await settle(pilot)
        assert app.is_running and isinstance(app.screen, PromptScreen)
        assert driver._guests[dom.uuid].memory_stats_period == before  # noqa: SLF001


async def test_console_on_an_embedded_host_says_why_not(demo):
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "mail")
        await pilot.press("c")
        await settle(pilot)
        assert any("no serial console" in n.message for n in app._notifications)  # noqa: SLF001


async def test_bulk_start_of_marked_domains_across_hosts_one_confirmation(demo):
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for name in ("build-runner", "web-standby", "backup", "mail"):  # hv1, hv2 (conflict), hv2, hv1 running
            await select(pilot, demo, name)
            await pilot.press("space")
        await pilot.pause()
        assert len(app.screen.marked) == 4
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        body = str(app.screen.query_one("#dialog-body").render())
        assert "3 domains" in body and "build-runner on hv1" in body and "1 marked domain skipped" in body
        assert "mail" not in body
        await pilot.press("y")
        await settle(pilot)
        await settle(pilot)
        assert host_of(demo, "build-runner")[1].state is DomainState.RUNNING
        assert host_of(demo, "backup")[1].state is DomainState.RUNNING
        assert host_of(demo, "web-standby")[1].state is DomainState.SHUT_OFF  # its disk is web-01's
        notes = [n.message for n in app._notifications]  # noqa: SLF001
        assert "Start: 3 domains done, 1 failed (L lists them)" in notes  # one toast for the bulk action
        recorded = [entry.text for entry in app.activity.entries()]
        assert any("web-standby" in text and "failed" in text for text in recorded)
        assert app.screen.marked == set()


async def test_star_marks_what_the_filter_shows_and_esc_drops_the_marks(demo):
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"web", "enter")
        await settle(pilot)
        await pilot.press("asterisk")
        await pilot.pause()
        names = {host_of(demo, n)[1].uuid for n in ("web-01", "web-02", "web-03", "web-standby")}
        assert {uuid for _, uuid in app.screen.marked} == names
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert app.screen.marked == set()


async def test_a_console_that_fails_gives_the_terminal_back_to_the_console(demo, monkeypatch):
    """No console on the guest, a lost connection: the error is a notification and the console is resumed
    (Textual's suspend() resumes only when its body returns: the console used to stay stopped)."""
    from virttui.drivers.errors import OperationInvalid

    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        calls: list[str] = []
        terminal = app._driver  # noqa: SLF001 - the headless driver stands in for a real terminal
        monkeypatch.setattr(type(terminal), "can_suspend", property(lambda self: True), raising=False)
        monkeypatch.setattr(terminal, "suspend_application_mode", lambda: calls.append("suspend"), raising=False)
        monkeypatch.setattr(terminal, "resume_application_mode", lambda: calls.append("resume"), raising=False)
        driver, dom = host_of(demo, "web-01")
        monkeypatch.setattr(driver, "has_console", lambda: True)

        def no_console(uuid: str) -> None:
            raise OperationInvalid("the serial console ended with status 1")

        monkeypatch.setattr(driver, "attach_console", no_console)
        app.essentials.console(driver.uri, dom)
        await settle(pilot)
        assert calls == ["suspend", "resume"]
        assert any("status 1" in n.message for n in app._notifications)  # noqa: SLF001


async def test_a_snapshot_time_beyond_any_calendar_is_shown_as_a_dash(demo):
    """creationTime comes from the host's XML: one past what gmtime takes emptied the whole list."""
    from textual.widgets import DataTable

    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        driver, dom = host_of(demo, "db-primary")
        driver.wall_clock = lambda: 1.0e20
        driver.create_snapshot(dom.uuid, "far", "")
        driver.wall_clock = lambda: 1.0e9
        driver.create_snapshot(dom.uuid, "near", "")
        app.push_screen(DomainDetailScreen(driver.uri, dom.uuid))
        await settle(pilot)
        table = app.screen.query_one("#snapshots", DataTable)
        assert table.row_count == 2
        taken = {str(table.get_row_at(row)[0]).strip("● "): str(table.get_row_at(row)[1]) for row in range(2)}
        assert taken == {"far": "-", "near": "2001-09-09 01:46"}


async def test_sparklines_stay_flat_until_there_are_two_samples(demo, clock):
    """Textual draws a single value as a full-height bar: a domain just connected looked busy."""
    from support.app import poll
    from textual.widgets import Sparkline

    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        driver, dom = host_of(demo, "db-primary")
        await poll(pilot, clock)  # one rate: one sample
        assert len(app.fleet.history(driver.uri, dom.uuid)[0]) == 1
        app.push_screen(DomainDetailScreen(driver.uri, dom.uuid))
        await settle(pilot)
        assert app.screen.query_one("#cpu-spark", Sparkline).data == []
        await poll(pilot, clock)
        await settle(pilot)
        assert len(app.screen.query_one("#cpu-spark", Sparkline).data) == 2


async def test_the_detail_screen_of_a_domain_that_went_says_which_and_shows_no_live_figures(demo, clock):
    from support.app import poll
    from textual.widgets import Label, Sparkline

    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        driver, dom = host_of(demo, "build-runner")  # shut off: undefined at once
        for _ in range(3):
            await poll(pilot, clock)
        app.push_screen(DomainDetailScreen(driver.uri, dom.uuid))
        await settle(pilot)
        driver.undefine(dom.uuid)
        await poll(pilot, clock)
        head = str(app.screen.query_one("#detail-head").render())
        assert "build-runner is gone from hv1" in head
        assert app.screen.query_one("#cpu-spark", Sparkline).data == []
        assert str(app.screen.query_one("#cpu-label", Label).render()) == "CPU -"


def blocked(driver, method: str) -> threading.Event:  # noqa: ANN001 - TestDriver
    """The driver's `method` waits until the returned event is set: a slow remote host."""
    release = threading.Event()
    real = getattr(driver, method)

    def slow(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        assert release.wait(30)
        return real(*args, **kwargs)

    setattr(driver, method, slow)
    return release


def notices(app) -> list[str]:  # noqa: ANN001
    return [str(n.message) for n in app._notifications]  # noqa: SLF001


async def test_a_snapshot_that_finishes_after_its_screen_closed_is_still_reported(demo):
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        driver, dom = host_of(demo, "web-01")
        release = blocked(driver, "create_snapshot")
        await select(pilot, demo, "web-01")
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("n")
        await pilot.pause()
        await pilot.press(*"s1", "enter")
        await pilot.pause()
        await pilot.press("escape")  # the detail screen closes while the host is still working
        await pilot.pause()
        assert not isinstance(app.screen, DomainDetailScreen)
        release.set()
        await settle(pilot)
        assert notices(app)[-1] == "snapshot s1 of web-01 taken"
        assert [s.name for s in driver.snapshots(dom.uuid)] == ["s1"]
        assert not [w for w in app.workers if w.state is WorkerState.ERROR]
        assert not [w for w in app.screen.workers if w.state is WorkerState.ERROR]


async def test_autostart_pressed_twice_on_a_slow_host_changes_it_once(demo):
    """Both presses computed "on" from the same old state; the second now waits its turn."""
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        driver, dom = host_of(demo, "mail")
        before = dom.autostart
        release = blocked(driver, "set_autostart")
        await select(pilot, demo, "mail")
        await pilot.press("a", "a")
        await pilot.pause()
        assert notices(app)[-1].endswith("the previous change is still in progress")
        release.set()
        await settle(pilot)
        assert host_of(demo, "mail")[1].autostart is (not before)
        await pilot.press("a")  # once done, the key works again, from the new state
        await settle(pilot)
        assert host_of(demo, "mail")[1].autostart is before


async def test_polls_that_change_nothing_the_keys_depend_on_leave_the_detail_footer_alone(demo, clock):
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = await open_detail(pilot, demo, "web-01")
        rebuilds = []
        real = screen.refresh_bindings
        screen.refresh_bindings = lambda: rebuilds.append(1) or real()
        for _ in range(3):
            await poll(pilot, clock)
        assert rebuilds == []
        driver, dom = host_of(demo, "web-01")
        driver.suspend(dom.uuid)
        await poll(pilot, clock)
        assert rebuilds == [1]


async def test_autostart_waits_for_the_poll_that_shows_the_change_before_toggling_again(demo):
    """The call was done but the poll after it was slow: a second press computed "on" again from the
    old snapshot. It now waits until a poll started after the change has come back."""
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        driver, dom = host_of(demo, "mail")
        before = dom.autostart
        await select(pilot, demo, "mail")
        release = blocked(driver, "poll")  # the poll after the change hangs for now
        await pilot.press("a")
        await pilot.pause(0.2)
        await pilot.press("a")
        await pilot.pause()
        assert notices(app)[-1].endswith("the previous change is still in progress")
        release.set()
        await settle(pilot)
        assert host_of(demo, "mail")[1].autostart is (not before)
        await pilot.press("a")
        await settle(pilot)
        assert host_of(demo, "mail")[1].autostart is before


async def test_snapshot_cells_from_the_host_are_text_never_markup(demo):
    """A snapshot's state and description are the host's words: `[red]` in them is shown, not obeyed."""
    from rich.text import Text
    from textual.widgets import DataTable

    from virttui.drivers.model import DomainSnapshot

    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        driver, dom = host_of(demo, "db-primary")
        app.push_screen(DomainDetailScreen(driver.uri, dom.uuid))
        await settle(pilot)
        screen = app.screen
        screen._show_snapshots([DomainSnapshot(name="[b]n[/b]", description="[red]d", state="[link=x]s",  # noqa: SLF001
                                               created=1), DomainSnapshot(name="x\x1b[2J", usable=False)], "")
        table = screen.query_one("#snapshots", DataTable)
        cells = [table.get_row_at(0)[i] for i in range(4)]
        assert all(isinstance(cell, Text) for cell in cells)
        assert [cell.plain for cell in cells] == ["  [b]n[/b]", "1970-01-01 00:00", "[link=x]s", "[red]d"]
        unsafe = table.get_row_at(1)[0].plain
        assert "\\x1b[2J" in unsafe and "\x1b" not in unsafe and "unusable name" in unsafe

"""Keys act only on what the operator sees: the focused pane, the shown marks, a named target."""

from __future__ import annotations

from support.app import make_app, poll, settle
from support.pilot import host_of, notices, select, state_of, visible_names

from virttui.config import Config
from virttui.console.app import VirtTUI
from virttui.drivers.model import DomainState
from virttui.drivers.registry import open_driver
from virttui.screens.confirm import ConfirmScreen
from virttui.widgets.panes import FOCUS_MARKER, DomainsTable, HostsTable


async def test_guest_keys_do_nothing_from_the_hosts_pane_and_say_why(app, demo):
    """`s` with the Hosts pane focused used to start the guest under the unfocused Domains cursor."""
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "build-runner")
        app.screen.query_one(HostsTable).focus()
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        assert state_of(demo, "build-runner") is DomainState.SHUT_OFF
        assert notices(app)[-1] == "guest keys act on the Domains pane: Tab to it first"
        assert app.screen.check_action("domain", ("start",)) is not True  # not offered in the Footer
        assert "Tab to Domains" in str(app.screen.query_one(DomainsTable).border_subtitle)
        app.screen.query_one(DomainsTable).focus()
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        assert state_of(demo, "build-runner") is DomainState.RUNNING


async def test_the_target_and_the_focused_pane_are_named_on_screen(app, demo):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "web-01")
        domains, hosts = app.screen.query_one(DomainsTable), app.screen.query_one(HostsTable)
        assert str(domains.border_subtitle) == "→ web-01 @ hv1"
        assert str(domains.border_title).startswith(FOCUS_MARKER)
        assert not str(hosts.border_title).startswith(FOCUS_MARKER)
        await pilot.press("tab")
        await settle(pilot)
        assert not str(domains.border_title).startswith(FOCUS_MARKER)
        assert any(str(pane.border_title).startswith(FOCUS_MARKER) for pane in app.screen.query(".pane, DataTable"))


async def test_a_mark_hidden_by_the_filter_is_never_acted_on(app, demo):
    """Marking web-01, filtering to db-primary and pressing r used to reboot web-01 unseen."""
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "web-01")
        await pilot.press("space")
        await select(pilot, demo, "web-02")
        await pilot.press("space")
        await pilot.press("slash", *"web-01", "enter")
        await settle(pilot)
        domains = app.screen.query_one(DomainsTable)
        assert "2 marked, 1 hidden" in str(domains.border_title)
        assert "1 marked (1 hidden, not acted on)" in str(domains.border_subtitle)
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        body = app.screen._body  # noqa: SLF001
        listed, _, left_alone = body.partition("Left alone")
        assert "web-01" in listed and "web-02" not in listed
        assert "web-02" in left_alone
        await pilot.press("y")
        await settle(pilot)
        assert state_of(demo, "web-02") is DomainState.RUNNING  # the hidden one: untouched
        rebooted = host_of(demo, "web-01")[0]
        assert rebooted is not None


async def test_only_hidden_marks_act_on_nothing_and_say_so(app, demo):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "web-01")
        await pilot.press("space")
        await pilot.press("slash", *"db-primary", "enter")
        await settle(pilot)
        await pilot.press("f")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmScreen)
        assert "1 marked domain hidden" in notices(app)[-1]
        assert state_of(demo, "web-01") is DomainState.RUNNING
        assert state_of(demo, "db-primary") is DomainState.RUNNING


async def test_the_filter_says_how_many_match_on_other_hosts_and_A_shows_them(app, demo):
    """With hv1 chosen, /standby showed an empty table with no hint that web-standby is on hv2."""
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        hosts = app.screen.query_one(HostsTable)
        hosts.move_cursor(row=1)  # hv1
        await settle(pilot)
        await pilot.press("slash", *"standby", "enter")
        await settle(pilot)
        domains = app.screen.query_one(DomainsTable)
        assert visible_names(app) == []
        assert "1 match on other hosts: A shows all hosts" in str(domains.border_title)
        assert not app.screen.query_one("#filter").display  # the three-line input gone once Enter kept it
        kept = app.screen.query_one("#filter-kept")
        assert kept.display and kept.size.height == 1 and "Filter: standby" in str(kept.content)
        await pilot.press("A")
        await settle(pilot)
        assert visible_names(app) == ["web-standby"]


async def test_two_hosts_of_one_name_are_told_apart_and_a_configured_name_wins(demo, tmp_path, lease_dir):
    """test:///default beside the demo used to give two indistinguishable "hv1" hosts."""
    other = open_driver(f"test:///default?lease_dir={lease_dir}&host_id=9")
    app = VirtTUI([*demo.drivers, other], autopoll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        labels = [host.label for host in app.fleet.hosts()]
        assert labels.count("hv1") == 0
        assert f"hv1 ({demo.drivers[0].uri})" in labels and f"hv1 ({other.uri})" in labels
        assert "hv2" in labels
    named = VirtTUI([*demo.drivers], autopoll=False,
                    config=Config(hosts=tuple(d.uri for d in demo.drivers), names=((demo.drivers[1].uri, "rack-b"),)))
    async with named.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert [host.label for host in named.fleet.hosts()] == ["hv1", "rack-b", "hv3"]


async def test_q_asks_before_quitting_while_an_action_runs(demo, clock):
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot, clock)
        uri, dom = host_of(demo, "web-01")
        app.actions.pending[(uri, dom.uuid)] = "rebooting"
        await pilot.press("q")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen) and app.is_running
        await pilot.press("n")
        await settle(pilot)
        assert app.is_running
        del app.actions.pending[(uri, dom.uuid)]
        await pilot.press("q")
        await settle(pilot)
        assert not app.is_running


async def test_the_palette_lists_every_action_and_view_and_none_of_textuals(app, demo):
    from virttui import actiontable as registry

    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        for spec in registry.keyed("main"):
            assert any(spec.key and title in titles for title, _, _ in registry.in_palette("main"))
        for wanted in ("Serial console", "Toggle autostart", "Undefine domain", "Zoom the Domains pane",
                       "Mark the domain", "Command line", "Activity", "Quit"):
            assert wanted in titles
        for textuals in ("Keys", "Maximize", "Screenshot", "Theme"):
            assert not any(title.startswith(textuals) for title in titles)


async def test_the_command_line_chooses_hosts_filters_sorts_and_acts(app, demo):
    from virttui.screens.commandline import CommandLineScreen

    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("colon")
        await settle(pilot)
        assert isinstance(app.screen, CommandLineScreen)
        await pilot.press(*"host h", "tab")  # completes to the first host
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.selected_host == demo.drivers[0].uri
        app.screen.run_command("sort cpu")
        await settle(pilot)
        assert app.screen.query_one(DomainsTable).sort_column == "cpu"
        app.screen.run_command(":filter web-0")
        await settle(pilot)
        assert visible_names(app) == ["web-01", "web-02"] or sorted(visible_names(app)) == ["web-01", "web-02"]
        app.screen.run_command("host all")
        app.screen.run_command("filter build-runner")
        await settle(pilot)
        app.screen.run_command("start")
        await settle(pilot)
        assert state_of(demo, "build-runner") is DomainState.RUNNING
        app.screen.run_command("leases")
        await settle(pilot)
        assert app.screen.focused.id == "leases"
        app.screen.run_command("frobnicate now")
        await settle(pilot)
        assert notices(app)[-1].startswith("unknown command: frobnicate now")


async def test_every_action_says_it_started_and_how_it_ended(app, demo):
    """`r` then `y`, start and Ctrl+R used to show nothing at all."""
    ticks = iter(range(0, 10_000, 10))
    app.actions._clock = lambda: float(next(ticks))  # noqa: SLF001 - results seconds apart: a toast each
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "build-runner")
        await pilot.press("s")
        await settle(pilot)
        recorded = [entry.text for entry in app.activity.entries()]
        assert "build-runner on hv1: starting…" in recorded  # the row shows it; the record keeps it
        assert notices(app)[-1] == "Start build-runner on hv1: done, running"
        await select(pilot, demo, "web-01")
        await pilot.press("r", "y")
        await settle(pilot)
        assert "web-01 on hv1: rebooting…" in [entry.text for entry in app.activity.entries()]
        assert notices(app)[-1] == "Reboot web-01 on hv1: asked the guest"
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert "Refresh: polling 3 hosts now…" in notices(app)
        assert notices(app)[-1] == "Refresh: 3 hosts polled"


def test_two_lease_directories_are_counted_as_two(demo):
    """test:///default (its own lease directory) beside the demo: its 9 held leases are its own,
    not the demo's counted twice, and the title says so."""
    import time

    from virttui.fleet import Fleet
    from virttui.views import LeasesCache, leases_view

    other = open_driver("test:///default")
    drivers = [*demo.drivers, other]
    fleet = Fleet([driver.uri for driver in drivers])
    for driver in drivers:
        driver.connect()
        fleet.apply(driver.poll())
    other.close()
    assert leases_view(fleet, LeasesCache(), time.time()).title.startswith("Leases · 2 directories · ")



async def test_a_refused_start_names_the_holder_once_a_poll_shows_it(app, demo, clock, monkeypatch):
    """When the refusal arrives before any poll shows who holds the disk (two starts racing), the
    holder is named by the next polls instead of never."""
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot, clock)
        real = app.fleet.disks_held_elsewhere
        known = {"holder": False}

        def not_yet(uri, dom):  # noqa: ANN001, ANN202 - until the holder's poll has landed
            return real(uri, dom) if known["holder"] else []

        monkeypatch.setattr(app.fleet, "disks_held_elsewhere", not_yet)
        await select(pilot, demo, "web-standby")
        await pilot.press("s")
        await settle(pilot)
        assert "failed" in notices(app)[-1] and "in use by" not in notices(app)[-1]
        known["holder"] = True
        await poll(pilot, clock)
        assert "Start web-standby: its vda is in use by hv1/web-01" in notices(app)
        before = len(notices(app))
        await poll(pilot, clock)
        assert len([n for n in notices(app)[before:] if "in use by" in n]) == 0  # said once


async def test_an_action_on_many_marked_domains_is_one_toast_and_a_line_each_in_the_record(app, demo):
    """A bulk reboot of many guests used to be a toast per guest; each is in the record (L) instead."""
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "web-01")
        await pilot.press("space", "space")  # web-01 and web-02
        before = len(notices(app))
        await pilot.press("r", "y")
        await settle(pilot)
        assert notices(app)[before:] == ["Reboot: 2 domains done"]
        recorded = [entry.text for entry in app.activity.entries()]
        assert {"Reboot web-01 on hv1: asked the guest", "Reboot web-02 on hv1: asked the guest"} <= set(recorded)



async def test_results_in_quick_succession_are_one_toast_the_rest_in_the_record(app, demo):
    """Many results within a second used to be a toast each (and the toasts' memory in the soak)."""
    now = [100.0]
    app.actions._clock = lambda: now[0]  # noqa: SLF001
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for name in ("build-runner", "backup"):
            await select(pilot, demo, name)
            await pilot.press("s")
            await settle(pilot)
        results = [n for n in notices(app) if n.startswith("Start")]
        assert results == ["Start build-runner on hv1: done, running"]
        assert "Start backup on hv2: done, running" in [entry.text for entry in app.activity.entries()]
        now[0] += 5
        await select(pilot, demo, "web-03")
        await pilot.press("f", "y")
        await settle(pilot)
        assert notices(app)[-1] == "Force off web-03 on hv2: done, shut off (and 1 more: L)"


async def test_the_filter_box_is_mounted_at_the_first_slash_and_kept(app, demo):
    """A start does not style an input nobody has asked for; / mounts and focuses it in one go."""
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert not app.screen.query("#filter")  # not in the first frame
        await pilot.press("escape")  # Esc with no filter box: nothing to clear, no error
        await settle(pilot)
        await pilot.press("slash", *"web")
        await settle(pilot)
        box = app.screen.query_one("#filter")
        assert box.has_focus and box.display and box.region.height == 3
        assert visible_names(app) and all("web" in name for name in visible_names(app))
        await pilot.press("escape")
        await settle(pilot)
        assert not box.display and box.is_attached and app.screen.filter_text == ""
        await pilot.press("slash")
        await settle(pilot)
        assert app.screen.query_one("#filter") is box and box.has_focus and box.value == ""

"""The console never acts on a domain the operator did not choose, and never reads data as markup."""

from __future__ import annotations

import dataclasses
import json

from support.app import lost_connection, make_app, poll, settle
from support.cleanupstream import NAMES, ScriptedTransport, manager, outcome
from support.paths import DEMO_NODE
from textual.widgets._footer import FooterKey

from virttui.console.app import VirtTUI
from virttui.drivers.model import DomainState
from virttui.drivers.testdriver import TestDriver
from virttui.locks.model import LeaseState
from virttui.screens.cleanup import CleanupScreen
from virttui.screens.confirm import ConfirmScreen
from virttui.widgets.keysfooter import KeysFooter
from virttui.widgets.panes import DisksTable, DomainsTable, domain_key

HOSTILE = "aa[/]x"  # sorts first; as Rich markup it is an error that used to close the console


def footer_enabled(app: VirtTUI) -> dict[str, bool]:
    keys = app.screen.query_one(KeysFooter).query(FooterKey)
    return {key.key: not key.has_class("-disabled") for key in keys}


async def test_names_and_filter_text_are_shown_as_text_never_read_as_markup(tmp_path, clock):
    node = tmp_path / "hostile.xml"
    node.write_text(DEMO_NODE.read_text().replace("<name>web-01</name>", f"<name>{HOSTILE}</name>"))
    app = VirtTUI([TestDriver(f"test://{node}", str(node), lease_dir=str(tmp_path), clock=clock)],
                  poll_interval=2.0, autopoll=False)
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.selected_domain()[1].name == HOSTILE
        assert f"Disks · {HOSTILE}" in str(screen.query_one(DisksTable).border_title).replace("\\[", "[")
        screen.action_domain("start")  # as the command palette does: it runs, so a warning names it
        await pilot.press("slash", "left_square_bracket", "slash")
        await settle(pilot)
        assert screen.filter_text == "[/"
        assert app.return_code is None and app.is_running
        assert any(HOSTILE in note.message for note in app._notifications)


async def test_a_cleanup_that_stops_part_way_ends_the_dialog_and_counts_what_it_removed(demo):
    app = make_app(demo)
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        lost = manager(ScriptedTransport([json.dumps({"total": 3}) + "\n", outcome(NAMES[0])], status=None))
        template = next(status for _, status in app.fleet.lease_rows())
        candidates = [dataclasses.replace(template, name=name, state=LeaseState.FREE) for name in NAMES]
        results: list[int | None] = []
        app.push_screen(CleanupScreen(lost, "hv9", candidates), results.append)
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, CleanupScreen) and dialog.done and not dialog.running
        summary = str(dialog.query_one("#cleanup-summary").content)
        assert summary.startswith("Cleanup stopped after removing 1 file:") and "stopped after 1 of 3" in summary
        await pilot.press("escape")
        await settle(pilot)
        assert results == [1] and not isinstance(app.screen, CleanupScreen)


async def test_the_footer_offers_what_the_marked_domains_allow(demo):
    app = make_app(demo)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        screen = app.screen
        while screen.selected_domain()[1].state is not DomainState.SHUT_OFF:
            await pilot.press("down")
        await settle(pilot)
        assert footer_enabled(app)["s"] and not footer_enabled(app)["d"]
        await pilot.press("asterisk")  # every shown domain marked: running ones among them
        await settle(pilot)
        assert footer_enabled(app)["d"] and screen.check_action("domain", ("shutdown",))
        await pilot.press("escape")  # marks dropped: back to the cursor's shut-off domain
        await settle(pilot)
        assert not screen.marked
        assert footer_enabled(app)["s"] and not footer_enabled(app)["d"]


async def test_when_a_failed_host_takes_the_cursor_row_away_no_key_acts_until_it_is_moved(demo, clock):
    app = make_app(demo)
    hv2 = demo.drivers[1]
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        screen = app.screen
        table = screen.query_one(DomainsTable)
        chosen = next(d for d in hv2.poll().domains if d.state is DomainState.RUNNING)
        table.follow_key = True
        table.move_to_key(domain_key(hv2.uri, chosen.uuid))
        await settle(pilot)
        healthy_poll = hv2.poll

        hv2.poll = lost_connection
        await poll(pilot, clock)
        slid_to = screen.selected_domain()
        assert slid_to is not None and slid_to[0] != hv2.uri  # the cursor sits on another host's domain
        assert screen.current_domain() is None and not footer_enabled(app)["d"]
        await pilot.press("d", "f", "space", "enter")  # no lifecycle key, no mark, no detail screen
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmScreen) and app.screen is screen and not screen.marked
        said = [str(n.message) for n in app._notifications]  # noqa: SLF001
        assert said[-1] == "the domain under the cursor went away: move the cursor to choose one"
        assert app.fleet.domain(*[slid_to[0], slid_to[1].uuid]).state is slid_to[1].state
        hv2.poll = healthy_poll  # the host is back before the operator moved: so is the cursor
        await poll(pilot, clock)
        assert table.highlighted_key == domain_key(hv2.uri, chosen.uuid)
        assert screen.current_domain()[1].uuid == chosen.uuid and footer_enabled(app)["d"]
        hv2.poll = lost_connection
        await poll(pilot, clock)
        await pilot.press("down")  # the operator moves: the domain under the cursor is theirs again
        await settle(pilot)
        assert screen.current_domain() is not None


def test_every_toast_and_border_title_is_given_as_text():
    """Toasts and border titles carry names and error messages: as markup strings, a `[/]` in a
    domain name closed the console. Every notify() passes markup=False; titles set from data are
    Content. Checked on the source, so a new call can't slip past."""
    import ast
    from pathlib import Path

    import virttui

    offenders = []
    for path in Path(virttui.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "notify":
                if node.args and not any(k.arg == "markup" and isinstance(k.value, ast.Constant)
                                         and k.value.value is False for k in node.keywords):
                    offenders.append(f"{path.name}:{node.lineno}")
            if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Attribute) and t.attr == "border_title"
                                                     for t in node.targets)
                    and not isinstance(node.value, ast.Constant)
                    and not (isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "Content")):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


async def test_the_detail_screen_of_a_failed_hosts_domain_offers_no_action(demo, clock):
    from virttui.screens.detail import DomainDetailScreen

    app = make_app(demo)
    hv2 = demo.drivers[1]
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        running = next(r.domain for r in app.fleet.domain_rows(hv2.uri) if r.domain.state is DomainState.RUNNING)
        app.push_screen(DomainDetailScreen(hv2.uri, running.uuid))
        await settle(pilot)
        detail = app.screen
        assert detail.check_action("domain", ("shutdown",))

        hv2.poll = lost_connection
        await poll(pilot, clock)
        assert not detail.check_action("domain", ("shutdown",))
        assert "when last seen" in str(detail.query_one("#detail-head").render())
        await pilot.press("d")
        await settle(pilot)
        assert app.screen is detail  # no confirmation, nothing sent
        assert [str(n.message) for n in app._notifications][-1] == "hv2 is in error"  # noqa: SLF001 - and why


async def test_no_cleanup_is_offered_on_a_host_that_is_not_connected(demo, clock):
    app = make_app(demo)
    hv2 = demo.drivers[1]
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)

        hv2.poll = lost_connection
        await poll(pilot, clock)
        assert app.fleet.snapshot(hv2.uri) is not None  # its last snapshot is still there, stale
        app.open_cleanup(hv2.uri)
        await settle(pilot)
        assert not isinstance(app.screen, CleanupScreen)
        assert any("no host with a lease directory is connected" in n.message for n in app._notifications)


async def test_a_host_key_is_trusted_only_by_a_deliberate_choice_never_over_another_dialog(demo):
    """The trust dialog appears whenever a host's connect fails on an unknown key, maybe while the operator
    types: it never stacks on another question, and no single stray key (y, Enter) trusts the key."""
    import paramiko

    from virttui.drivers.sshhostkeys import UnknownHostKey
    from virttui.screens.confirm import TrustScreen

    app = make_app(demo)
    hv2 = demo.drivers[1]
    pending = UnknownHostKey("hv2", paramiko.ECDSAKey.generate(), "/nonexistent/known_hosts")
    trusted = []
    hv2.pending_host_key = lambda: pending
    hv2.trust_host_key = trusted.append
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select_first(pilot)
        await pilot.press("f")  # force off: a confirmation is open
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        app.host_keys.check(hv2.uri)
        await settle(pilot)
        assert not isinstance(app.screen, TrustScreen)  # not on top of the open question
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, TrustScreen)  # asked as soon as that one was answered
        await pilot.press("y")
        await settle(pilot)
        assert isinstance(app.screen, TrustScreen) and trusted == []
        await pilot.press("tab", "enter")
        await settle(pilot)
        assert trusted == [pending] and not isinstance(app.screen, TrustScreen)
        app.host_keys._asking.clear()  # noqa: SLF001 - asked once more, now refused
        app.host_keys.check(hv2.uri)
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        assert app.host_keys._declined  # noqa: SLF001
        app.roster.remove(hv2.uri)  # removed, and maybe added again: asked afresh
        await settle(pilot)
        assert not app.host_keys._declined  # noqa: SLF001


async def select_first(pilot) -> None:  # noqa: ANN001
    table = pilot.app.screen.query_one(DomainsTable)
    table.focus()
    running = next(i for i, row in enumerate(table.ordered_rows) if "running" in str(table.get_row(row.key)))
    table.move_cursor(row=running)
    await settle(pilot)


async def test_before_any_key_the_cursor_stays_on_its_domain_while_polls_resort_the_rows(demo, clock):
    """A remembered sort by CPU re-orders the rows on every poll: the cursor stays on the domain it started
    on, never on whatever has row 0 when the first key comes."""
    from virttui.config import Config

    app = VirtTUI(demo.drivers, poll_interval=2.0, autopoll=False, config=Config(domain_sort="cpu"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(DomainsTable)
        assert table.sort_column == "cpu"
        first = table.highlighted_key
        rows_seen = {table.cursor_row}
        for _ in range(8):
            await poll(pilot, clock, 7.0)
            assert table.highlighted_key == first
            rows_seen.add(table.cursor_row)
        assert len(rows_seen) > 1  # the domain did move between rows: the cursor went with it


async def test_marks_go_with_their_host_when_it_fails_or_is_removed(demo, clock):
    app = make_app(demo)
    hv2, hv3 = demo.drivers[1], demo.drivers[2]
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        screen = app.screen
        table = screen.query_one(DomainsTable)
        for driver in (hv2, hv3):
            dom = next(d for d in driver.poll().domains if d.state is DomainState.RUNNING)
            table.move_to_key(domain_key(driver.uri, dom.uuid))
            await settle(pilot)
            await pilot.press("space")
            await settle(pilot)
        assert {uri for uri, _ in screen.marked} == {hv2.uri, hv3.uri}
        hv2.poll = lost_connection
        await poll(pilot, clock)
        assert {uri for uri, _ in screen.marked} == {hv3.uri}  # its last-seen domains join no bulk action
        assert "1 marked" in str(table.border_title)
        app.roster.remove(hv3.uri)
        await settle(pilot)
        assert not screen.marked and "marked" not in str(table.border_title)


async def test_a_failed_host_keeps_its_name_and_facts_and_leaves_the_totals(demo, clock):
    from virttui.widgets.panes import HostsTable

    app = make_app(demo)
    hv2 = demo.drivers[1]
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        before = app.fleet.host(hv2.uri)
        hv2.poll = lost_connection
        await poll(pilot, clock)
        failed = app.fleet.host(hv2.uri)
        assert failed.label == before.label == "hv2" and failed.cpus == before.cpus and failed.last_error
        hosts = app.screen.query_one(HostsTable)
        all_row = [str(cell) for cell in hosts.get_row_at(0)]
        listed = app.screen.query_one(DomainsTable).row_count
        assert f"/{listed}" in " ".join(all_row)  # the total is what the Domains pane lists


async def test_a_confirmation_answered_after_the_host_failed_does_nothing_and_says_why(demo, clock):
    """Force off asked while the host was fine; the host failed while the dialog was open: `y` must
    not act on what the keys would no longer offer (the domains' states are unknown now)."""
    app = make_app(demo)
    hv1 = demo.drivers[0]
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        running = [d for d in hv1.poll().domains if d.state is DomainState.RUNNING]
        table = app.screen.query_one(DomainsTable)
        table.follow_key = True
        table.move_to_key(domain_key(hv1.uri, running[0].uuid))
        await settle(pilot)
        await pilot.press("f")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        hv1.poll = lost_connection
        await poll(pilot, clock)
        await pilot.press("y")
        await settle(pilot)
        assert [str(n.message) for n in app._notifications][-1] == \
            f"Force off {running[0].name}: not done, hv1 is in error"
        del hv1.poll  # the instance attribute: the class's real poll again
        assert {d.uuid: d.state for d in hv1.poll().domains}[running[0].uuid] is DomainState.RUNNING


async def test_a_pasted_escape_sequence_never_reaches_the_filter_or_the_title(demo):
    from textual import events
    from textual.widgets import Input

    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        await pilot.pause()
        app.focused.post_message(events.Paste("\x1b]0;owned\x07web\x1b[2J"))
        await settle(pilot)
        box = app.screen.query_one("#filter", Input)
        assert box.value == "]0;ownedweb[2J"
        assert app.screen.filter_text == "]0;ownedweb[2J"
        title = str(app.screen.query_one(DomainsTable).border_title)
        assert "\x1b" not in title and "\x07" not in title


async def test_a_failed_hosts_lockspace_cell_is_what_its_peers_see_not_its_last_own_view(demo, clock):
    """Whether a host that can't be reached is still live in the lockspace (its guests may still run
    and hold their leases) is what decides whether its guests may be started elsewhere."""
    from virttui.widgets.panes import HostsTable

    app = make_app(demo)
    hv1 = demo.drivers[0]
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        hosts = app.screen.query_one(HostsTable)

        def lockspace() -> str:
            return hosts.get_cell(hv1.uri, "lock").text

        assert lockspace() == "id 1 live"
        hv1.poll = lost_connection
        await poll(pilot, clock)
        assert lockspace() == "id 1 live"  # hv2 and hv3 still see it renew
        hv1._leases.leave_lockspace()  # noqa: SLF001 - its sanlock stops renewing: the peers see it go
        await poll(pilot, clock)
        assert lockspace() == "id 1 not live"
        for peer in demo.drivers[1:]:
            peer.poll = lost_connection
        await poll(pilot, clock)
        assert lockspace() == "id 1 unknown"  # no one left to ask


async def test_last_error_shows_only_while_a_host_has_one_and_the_hosts_cursor_stays(demo, clock):
    """Empty, the column pushed the Lockspace off 80 columns; showing it rebuilds the pane, which
    must not move the cursor (it chooses whose domains the Domains pane shows)."""
    from virttui.widgets.panes import HostsTable

    app = make_app(demo)
    hv1, hv2 = demo.drivers[0], demo.drivers[1]
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        hosts = app.screen.query_one(HostsTable)
        assert "error" not in hosts.shown_columns and "lock" in hosts.shown_columns
        hosts.move_to_key(hv2.uri)
        await settle(pilot)
        assert app.screen.scope()[1] == "hv2"
        hv1.poll = lost_connection
        await poll(pilot, clock)
        assert "error" in hosts.shown_columns
        assert hosts.get_cell(hv1.uri, "error").text == "ssh: connection reset"
        assert hosts.highlighted_key == hv2.uri and app.screen.scope()[1] == "hv2"
        del hv1.poll
        await poll(pilot, clock)
        await poll(pilot, clock)
        assert "error" not in hosts.shown_columns
        assert hosts.highlighted_key == hv2.uri and app.screen.scope()[1] == "hv2"


async def test_a_bulk_confirmation_answered_after_the_host_failed_says_so_once(demo, clock):
    app = make_app(demo)
    hv1 = demo.drivers[0]
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        running = [d for d in hv1.poll().domains if d.state is DomainState.RUNNING]
        screen = app.screen
        screen.marked = {(hv1.uri, d.uuid) for d in running}
        await pilot.press("f")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        before = len(list(app._notifications))  # noqa: SLF001
        hv1.poll = lost_connection
        await poll(pilot, clock)
        await pilot.press("y")
        await settle(pilot)
        said = [str(n.message) for n in app._notifications][before:]  # noqa: SLF001
        said = [line for line in said if line.startswith("Force off")]  # (the cursor's notice aside)
        assert len(said) == 1 and said[0].startswith(f"Force off: {len(running)} of {len(running)} not done (")
        assert said[0].endswith(f"hv1 is in error and {len(running) - 1} more)")
        del hv1.poll
        assert all(d.state is DomainState.RUNNING for d in hv1.poll().domains if d in running)

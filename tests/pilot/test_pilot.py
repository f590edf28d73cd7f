"""Keys pressed in the real app change the real (embedded) hosts."""

from __future__ import annotations

import os
import threading

import pytest
from support.app import poll, settle
from support.pilot import host_of, open_detail, select, visible_names

from virttui.console.app import VirtTUI
from virttui.drivers.model import ConnectionState, DomainState
from virttui.drivers.registry import open_driver_or_placeholder
from virttui.drivers.testdriver import TestDriver
from virttui.locks import ofd
from virttui.screens.cleanup import CleanupScreen
from virttui.screens.confirm import ConfirmScreen
from virttui.screens.detail import DomainDetailScreen
from virttui.screens.help import HelpScreen
from virttui.widgets.panes import DisksTable, DomainsTable, HostsTable, LeasesTable, domain_key


def state_of(demo, name):
    return host_of(demo, name)[1].state


async def test_start_key_starts_the_domain(app, demo):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "build-runner")
        await pilot.press("s")
        await settle(pilot)
        assert state_of(demo, "build-runner") is DomainState.RUNNING
        assert pilot.app.screen.selected_domain()[1].state is DomainState.RUNNING


async def test_shutdown_key_goes_through_in_shutdown(app, demo, clock):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "web-02")
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ConfirmScreen)  # shutdown asks first, as virt-manager does
        assert state_of(demo, "web-02") is DomainState.RUNNING
        await pilot.press("y")
        await settle(pilot)
        assert state_of(demo, "web-02") is DomainState.IN_SHUTDOWN
        await poll(pilot, clock, 5)
        assert state_of(demo, "web-02") is DomainState.SHUT_OFF
        assert pilot.app.screen.selected_domain()[1].state is DomainState.SHUT_OFF


async def test_force_off_asks_first_naming_domain_and_host(app, demo):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "web-01")
        await pilot.press("f")
        await pilot.pause()
        dialog = pilot.app.screen
        assert isinstance(dialog, ConfirmScreen)
        body = str(dialog.query_one("#dialog-body").content)
        assert "web-01" in body and "hv1" in body
        await pilot.press("n")
        await settle(pilot)
        assert state_of(demo, "web-01") is DomainState.RUNNING
        await pilot.press("f")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert state_of(demo, "web-01") is DomainState.SHUT_OFF


async def test_reboot_asks_first(app, demo):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "mail")
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(pilot.app.screen, ConfirmScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(pilot.app.screen, ConfirmScreen)


async def test_pause_then_resume_with_p(app, demo):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "web-02")
        assert footer_label(pilot.app, "p") == "Pause"
        await pilot.press("p")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ConfirmScreen)  # pausing asks first
        await pilot.press("y")
        await settle(pilot)
        assert state_of(demo, "web-02") is DomainState.PAUSED
        assert footer_label(pilot.app, "p") == "Resume"  # the key's label follows the state
        await pilot.press("p")  # resuming does not ask
        await settle(pilot)
        assert state_of(demo, "web-02") is DomainState.RUNNING
        assert footer_label(pilot.app, "p") == "Pause"


def footer_label(app, key):
    from textual.widgets._footer import FooterKey

    return next(str(widget.description) for widget in app.screen.query(FooterKey) if widget.key == key)


async def test_confirmations_follow_the_config(demo, tmp_path):
    from virttui.config import load_config

    path = tmp_path / "config.toml"
    path.write_text("[confirm]\nshutdown = false\nstart = true\n")
    app = VirtTUI(demo.drivers, poll_interval=2.0, autopoll=False, config=load_config(str(path)))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "web-02")
        await pilot.press("d")
        await settle(pilot)
        assert not isinstance(pilot.app.screen, ConfirmScreen)
        assert state_of(demo, "web-02") is DomainState.IN_SHUTDOWN
        await select(pilot, demo, "build-runner")
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(pilot)
        assert state_of(demo, "build-runner") is DomainState.SHUT_OFF


async def test_actions_invalid_for_the_state_are_not_offered(app, demo):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "build-runner")
        screen = pilot.app.screen
        assert screen.check_action("domain", ("shutdown",)) is None
        assert screen.check_action("domain", ("start",)) is True
        await pilot.press("d", "f", "p")
        await settle(pilot)
        assert state_of(demo, "build-runner") is DomainState.SHUT_OFF
        assert pilot.app.screen is screen  # no confirmation was even asked


async def test_lease_conflict_is_a_notification_naming_the_holder_not_a_crash(app, demo):
    """web-standby's disk is web-01's: its Disks row says so (not a green "held", as if its own),
    and the failed start names the domain holding the lease, not only sanlock's host_id."""
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "web-standby")
        disks = pilot.app.screen.query_one(DisksTable)
        assert disks.get_row_at(0)[3].text == "by other"
        assert str(disks.border_title).endswith("· in use by hv1/web-01")
        await pilot.press("s")
        await settle(pilot)
        assert state_of(demo, "web-standby") is DomainState.SHUT_OFF
        messages = [n.message for n in pilot.app._notifications]
        assert any("lease conflict" in m and "web-standby" in m and m.endswith("its vda is in use by hv1/web-01")
                   for m in messages)
        await select(pilot, demo, "web-01")  # the holder itself: its own lease, held
        assert disks.get_row_at(0)[3].text == "held"


async def test_filter_narrows_and_escape_clears(app, demo):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert len(visible_names(pilot.app)) == 25
        await pilot.press("slash", "k", "8", "s")
        await pilot.pause()
        assert sorted(visible_names(pilot.app)) == ["k8s-node-1", "k8s-node-2", "k8s-node-3"]
        await pilot.press("enter")
        await pilot.pause()
        assert pilot.app.focused is pilot.app.screen.query_one(DomainsTable)
        assert len(visible_names(pilot.app)) == 3  # the filter stays after Enter
        await pilot.press("escape")
        await pilot.pause()
        assert len(visible_names(pilot.app)) == 25


async def test_filter_matches_states(app, demo):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"paused")
        await pilot.pause()
        assert visible_names(pilot.app) == ["win-test"]


async def test_sort_key_cycles_columns(app, demo):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = pilot.app.screen.query_one(DomainsTable)
        assert table.sort_column == "host"
        await pilot.press("o")
        assert table.sort_column == "name"
        names = visible_names(pilot.app)
        assert names == sorted(names, key=str.casefold)
        await pilot.press("o", "o")
        assert table.sort_column == "cpu"


async def test_choosing_a_host_shows_only_its_domains(app, demo):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        hosts = pilot.app.screen.query_one(HostsTable)
        hosts.focus()
        await pilot.press("down", "down")  # all hosts → hv1 → hv2
        await pilot.pause()
        assert {row.host_label for row in pilot.app.fleet.domain_rows(pilot.app.screen.selected_host)} == {"hv2"}
        assert len(visible_names(pilot.app)) == 8


async def test_tab_moves_between_panes(app, demo):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        seen = {type(pilot.app.focused).__name__}
        for _ in range(4):
            await pilot.press("tab")
            seen.add(type(pilot.app.focused).__name__)
        assert {"HostsTable", "DomainsTable", "DisksTable", "LeasesTable"} <= seen


async def test_enter_opens_details_with_xml_and_escape_returns(app, demo, clock):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await poll(pilot, clock)
        screen = await open_detail(pilot, demo, "db-primary")
        assert isinstance(screen, DomainDetailScreen)
        assert "<name>db-primary</name>" in screen.query_one("#xml").content.code
        assert "db-primary on hv1" in screen.query_one("#detail-head").content.plain
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(pilot.app.screen, DomainDetailScreen)


async def test_help_lists_every_key(app):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(pilot.app.screen, HelpScreen)
        from virttui.screens.help import KEYS

        listed = " ".join(key for key, _ in KEYS)
        for key in ("s", "d", "r", "f", "p", "/", "o", "x", "?", "Enter", "Tab", "j k"):
            assert key in listed
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(pilot.app.screen, HelpScreen)


async def test_cleanup_previews_confirms_and_removes_only_stale_leases(app, demo, lease_dir):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        before = set(os.listdir(lease_dir))
        await pilot.press("x")
        await pilot.pause()
        screen = pilot.app.screen
        assert isinstance(screen, CleanupScreen)
        names = [s.name for s in screen.candidates]
        assert len(names) == 2 and all(s.state.value == "orphan" for s in screen.candidates)
        await pilot.press("y")
        await settle(pilot)
        assert screen.done and screen.removed == 2
        results = [screen.query_one("#cleanup-files").get_row(n)[3].text for n in names]
        assert all(r.startswith("PASS") for r in results)
        await pilot.press("escape")
        await settle(pilot)
        after = set(os.listdir(lease_dir))
        assert after == before - set(names)
        leases = pilot.app.screen.query_one(LeasesTable)
        assert all(leases.get_row_at(i)[0].text == "held" for i in range(leases.row_count))


async def test_the_cleanup_preview_reads_the_directory_afresh(app, demo, lease_dir):
    """The polls' view of lease files may be a pass old (docs/leases.md); a preview never is: a stale
    file left since the last poll, and a lease taken since by a host of another console, are both as
    they are now."""
    from virttui.locks.embedded import EmbeddedLeaseStore, write_free_lease

    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        stale = os.path.basename(write_free_lease(str(lease_dir), "/nowhere/left-behind.qcow2"))
        elsewhere = EmbeddedLeaseStore(str(lease_dir), 9)
        taken = os.path.basename(elsewhere.acquire("/nowhere/taken.qcow2"))
        try:
            known = {status.name for _, status in pilot.app.fleet.lease_rows()}
            assert stale not in known and taken not in known  # no poll since
            await pilot.press("x")
            await pilot.pause()
            names = {s.name for s in pilot.app.screen.candidates}
            assert stale in names and taken not in names
        finally:
            elsewhere.release_all()


async def test_cleanup_keeps_a_lease_taken_between_preview_and_confirm(app, demo, lease_dir):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("x")
        await pilot.pause()
        screen = pilot.app.screen
        first = screen.candidates[0]
        # Another host takes the lease after the preview: its disk is unknown here, so take the
        # file's lock directly, exactly as an embedded host of another process would.
        fd = os.open(first.path, os.O_RDWR)
        assert ofd.try_lock(fd)
        try:
            await pilot.press("y")
            await settle(pilot)
            assert os.path.exists(first.path)
            result = screen.query_one("#cleanup-files").get_row(first.name)[3].text
            assert result.startswith("FAIL") and "held" in result
            assert screen.removed == 1
        finally:
            os.close(fd)


async def test_command_palette_offers_every_action(app, demo):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        titles = {c.title: c for c in pilot.app.get_system_commands(pilot.app.screen)}
        for title in ("Start domain", "Shut down domain", "Reboot domain", "Force off domain",
                      "Pause or resume domain", "Filter domains", "Clean up lease files", "Domain details"):
            assert title in titles
        await select(pilot, demo, "build-runner")
        titles["Start domain"].callback()
        await settle(pilot)
        assert state_of(demo, "build-runner") is DomainState.RUNNING


async def test_bad_host_is_shown_in_error_while_others_work(demo):
    broken = open_driver_or_placeholder("qemu+ssh://root@127.0.0.1:1/system")
    app = VirtTUI([*demo.drivers, broken], autopoll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        host = pilot.app.fleet.host(broken.uri)
        assert host.state is ConnectionState.ERROR and "127.0.0.1:1" in host.last_error
        row = pilot.app.screen.query_one(HostsTable).get_row(broken.uri)
        assert row[1].text.startswith("retry in") or row[1].text == "error"
        assert "refused" in row[6].text or "Unable to connect" in row[6].text
        assert len(visible_names(pilot.app)) == 25


class GatedDriver(TestDriver):
    """A test host whose polls and actions wait for the test to open a gate: a slow hypervisor."""

    polls_in_process = False  # it stands for a slow remote host: polled on workers like one

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.poll_gate = threading.Event()
        self.action_gate = threading.Event()
        self.poll_gate.set()
        self.action_gate.set()

    def poll(self):
        assert self.poll_gate.wait(30)
        return super().poll()

    def perform(self, uuid, action):
        assert self.action_gate.wait(30)
        return super().perform(uuid, action)


@pytest.fixture
def gated(lease_dir, clock):
    node = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "demo", "hv3.xml")
    driver = GatedDriver("test:///slow", os.path.abspath(node), lease_dir=str(lease_dir), clock=clock)
    yield driver
    driver.poll_gate.set()
    driver.action_gate.set()


async def test_a_slow_host_never_blocks_the_ui_or_other_hosts(demo, gated):
    gated.poll_gate.clear()
    app = VirtTUI([demo.drivers[0], demo.drivers[1], gated], autopoll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        try:
            fast = [driver.uri for driver in demo.drivers[:2]]
            for _ in range(200):
                await pilot.pause(0.02)
                if all(app.fleet.snapshot(uri) is not None for uri in fast):
                    break
            assert all(app.fleet.host(uri).state is ConnectionState.CONNECTED for uri in fast)
            assert app.fleet.host(gated.uri).state is ConnectionState.CONNECTING
            await pilot.press("j", "j")  # keys are handled while the slow poll hangs
            assert app.screen.query_one(DomainsTable).cursor_row == 2
            app.scheduler.poll_now(gated.uri)  # a request during a poll waits for it: no pile-up
            assert sum(1 for w in app.workers if w.name == f"poll {gated.uri}") == 1
        finally:
            gated.poll_gate.set()
        await settle(pilot)
        assert app.fleet.host(gated.uri).state is ConnectionState.CONNECTED


async def test_an_action_shows_it_is_in_progress(demo, gated):
    app = VirtTUI([gated], autopoll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        gated.action_gate.clear()
        try:
            dom = next(d for d in gated.poll().domains if d.name == "dns-02")
            table = app.screen.query_one(DomainsTable)
            table.follow_key = True
            table.move_to_key(domain_key(gated.uri, dom.uuid))
            await pilot.press("s")
            await pilot.pause(0.05)
            assert table.get_row(domain_key(gated.uri, dom.uuid))[2].text == "starting…"
        finally:
            gated.action_gate.set()
        await settle(pilot)
        assert table.get_row(domain_key(gated.uri, dom.uuid))[2].text == "running"


async def test_a_confirmed_state_shows_at_once_and_survives_a_stale_poll(app, demo):
    """virsh start succeeded: the row says running before any poll, and a poll that began before
    the action returned cannot flip it back."""
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        driver, dom = host_of(demo, "build-runner")
        stale = driver.poll()  # taken before the start: build-runner shut off in it
        await select(pilot, demo, "build-runner")
        app.scheduler.autopoll = False
        started = []
        real_poll_now = app.scheduler.poll_now
        app.scheduler.poll_now = lambda uri: started.append(uri)  # hold the follow-up poll back
        await pilot.press("s")
        await settle(pilot)
        assert started == [driver.uri]
        assert visible_state(app, driver.uri, dom.uuid) == "running"
        assert app.actions.pending == {}
        from virttui.console.messages import HostPolled

        app.post_message(HostPolled(stale, app.scheduler.next_seq(driver.uri) - 1))  # the poll in flight
        await settle(pilot)
        assert visible_state(app, driver.uri, dom.uuid) == "running"
        app.scheduler.poll_now = real_poll_now
        app.scheduler.poll_now(driver.uri)
        await settle(pilot)
        assert visible_state(app, driver.uri, dom.uuid) == "running"
        assert app.fleet.domain(driver.uri, dom.uuid).id is not None  # the real poll's data now


def visible_state(app, uri, uuid):
    table = app.screen.query_one(DomainsTable)
    return table.get_row(domain_key(uri, uuid))[2].text


async def test_embedded_hosts_are_on_the_first_frame(app):
    """In-process hosts are polled before the first paint: no empty frame, no worker to wait for."""
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.screen.query_one(DomainsTable).row_count == 25
        assert all(host.state is ConnectionState.CONNECTED for host in app.fleet.hosts())


async def test_the_xml_scrolls_sideways_to_the_end_of_its_longest_line(app, demo, clock):
    """Long lines are not wrapped (an XML attribute split over two lines misleads): the pane scrolls."""
    async with app.run_test(size=(50, 40)) as pilot:
        await settle(pilot)
        await poll(pilot, clock)
        screen = await open_detail(pilot, demo, "db-primary")
        pane = screen.query_one("#xml-scroll")
        longest = max(len(line) for line in screen.query_one("#xml").content.code.splitlines())
        assert longest > pane.scrollable_content_region.width  # else this test shows nothing
        assert pane.virtual_size.width >= longest
        pane.focus()
        await pilot.press("end", "right", "right")
        await pilot.pause()
        assert pane.scroll_x > 0


def notices(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_a_key_that_cannot_act_now_says_why_and_stays_dimmed_in_the_footer(app, demo, clock):
    """`d` on a paused guest used to do nothing at all; the Footer keeps showing Shutdown, dimmed."""
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "win-test")
        assert state_of(demo, "win-test") is DomainState.PAUSED
        shutdown = pilot.app.screen.active_bindings["d"]
        assert (shutdown.binding.description, shutdown.enabled) == ("Shutdown", False)
        await pilot.press("d", "s")
        await pilot.pause()
        assert notices(pilot.app)[-2:] == ["Shut down: win-test is paused: p (resume) first, or f (force off)",
                                           "Start: win-test is paused: p (resume) instead"]
        assert state_of(demo, "win-test") is DomainState.PAUSED
        await select(pilot, demo, "build-runner")
        await pilot.press("p", "c")
        await pilot.pause()
        assert notices(pilot.app)[-2:] == ["Pause: build-runner is shut off",
                                           "Console: hv1 has no serial console to attach to"]


async def test_the_filter_finds_a_domain_by_uuid_and_by_disk_path(app, demo, clock):
    """A UUID pasted from a libvirtd log line, an image path from a storage alert."""
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        _driver, dom = host_of(demo, "db-primary")
        await pilot.press("slash", *dom.uuid.upper(), "enter")
        await settle(pilot)
        assert visible_names(pilot.app) == ["db-primary"]
        await pilot.press("slash")
        pilot.app.screen.query_one("#filter").value = "/var/lib/libvirt/images/demo.img"
        await settle(pilot)
        assert visible_names(pilot.app) == ["demo"]
        # a few letters are a name's, not every UUID's hex or every path's /var/lib
        pilot.app.screen.query_one("#filter").value = "lib"
        await settle(pilot)
        assert visible_names(pilot.app) == []
        pilot.app.screen.query_one("#filter").value = dom.uuid[:7]
        await settle(pilot)
        assert visible_names(pilot.app) == []


async def test_a_guest_paused_by_an_io_error_says_so_in_red(app, demo, clock):
    """Paused by a full disk is not paused by hand: the Domains row and the detail screen say why."""
    import dataclasses

    hv1 = demo.drivers[0]
    real_poll = hv1.poll

    def poll_with_reason():  # noqa: ANN202 - what virsh reports as state.reason=5 for a paused guest
        snap = real_poll()
        domains = tuple(dataclasses.replace(d, reason="I/O error") if d.name == "win-test" else d
                        for d in snap.domains)
        return dataclasses.replace(snap, domains=domains)

    hv1.poll = poll_with_reason
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await poll(pilot, clock)
        await select(pilot, demo, "win-test")
        table = pilot.app.screen.query_one(DomainsTable)
        state = table.get_row(table.highlighted_key)[2]
        assert (state.text, state.style) == ("paused (I/O error)", "bold red")
        await pilot.press("enter")
        await settle(pilot)
        assert "paused (I/O error)" in pilot.app.screen.query_one("#detail-head").content.plain


async def test_z_gives_the_domains_pane_the_whole_screen_and_back(app, demo):
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = pilot.app.screen
        domains = screen.query_one(DomainsTable)
        rows_before = domains.size.height
        await pilot.press("tab", "tab")  # focus leaves the Domains pane
        await pilot.press("z")
        await pilot.pause()
        assert not screen.query_one(HostsTable).region
        assert not screen.query_one("#bottom").region
        assert domains.size.height >= rows_before + 8  # the compact layout already gave it half the rows
        assert pilot.app.focused is domains
        await pilot.press("z")
        await pilot.pause()
        assert domains.size.height == rows_before and screen.query_one("#bottom").region


async def test_the_footer_relabels_p_in_place_as_the_cursor_meets_a_paused_guest(app, demo, monkeypatch):
    """Pause on a running guest, Resume on a paused one: the same key widgets relabelled in the
    cursor's own frame, never recomposed (which relaid the screen out a frame after the key), and
    laid out again: the wider label pushes the keys after it one cell to the right, and back."""
    from textual.widgets._footer import FooterKey

    def places() -> dict[str, tuple[int, int]]:
        return {key.key: (key.region.x, key.region.width) for key in pilot.app.screen.query(FooterKey)
                if key.display and key.key != "question_mark"}

    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "web-02")
        await settle(pilot)
        keys_before, places_before = list(pilot.app.screen.query(FooterKey)), places()
        assert footer_label(pilot.app, "p") == "Pause"
        _driver, dom = host_of(demo, "win-test")
        assert dom.state is DomainState.PAUSED
        keys_laid_out = []

        def count_key_layouts(_screen, message):  # before Screen's own handler, which relays out
            keys_laid_out.extend([message.widget] if isinstance(message.widget, FooterKey) else [])

        monkeypatch.setattr(type(pilot.app.screen), "_on_layout", count_key_layouts, raising=False)
        await select(pilot, demo, "win-test")
        assert footer_label(pilot.app, "p") == "Resume"  # at once, in the cursor's frame
        await settle(pilot)
        assert len(keys_laid_out) == 1  # its new width laid out once, not again a frame later
        assert list(pilot.app.screen.query(FooterKey)) == keys_before  # no recompose followed
        after = places()
        p_x, p_width = places_before["p"]
        assert after["p"] == (p_x, p_width + 1)
        assert all(after[key] == (x + (x > p_x), width) for key, (x, width) in places_before.items() if key != "p")
        await select(pilot, demo, "web-02")
        assert footer_label(pilot.app, "p") == "Pause"
        await settle(pilot)
        assert list(pilot.app.screen.query(FooterKey)) == keys_before
        assert places() == places_before

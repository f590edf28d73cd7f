"""At 80x24 and below: a compact layout, whole columns, and a Footer that never cuts a key."""

from __future__ import annotations

from support.app import make_app, poll, settle
from textual.widgets._footer import FooterKey

from virttui.views.common import columns_that_fit
from virttui.widgets.panes import DisksTable, DomainsTable, HostsTable, LeasesTable


def shown_keys(app) -> list[str]:  # noqa: ANN001
    return [f"{key.key_display}{key.description}" for key in app.screen.query(FooterKey) if key.display]


async def test_80x24_is_compact_hosts_a_line_disks_and_leases_tabs(app, clock):
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot, clock)
        screen = app.screen
        assert screen.has_class("-compact")
        assert not screen.query_one(HostsTable).display
        assert "Hosts 3/3 connected" in str(screen.query_one("#hosts-summary").content)
        domains = screen.query_one(DomainsTable)
        assert domains.size.height - 1 >= 10  # rows of domains, not 5 as before
        assert screen.query_one(DisksTable).display and not screen.query_one(LeasesTable).display
        assert "[Disks]" in str(screen.query_one("#bottom-tabs").content)
        await pilot.press("b")
        await settle(pilot)
        assert screen.query_one(LeasesTable).display and not screen.query_one(DisksTable).display
        assert "[Leases]" in str(screen.query_one("#bottom-tabs").content)
        await pilot.press("H")
        await settle(pilot)
        assert screen.query_one(HostsTable).display and screen.query_one(HostsTable).has_focus
        await pilot.press("H")
        await settle(pilot)
        assert not screen.query_one(HostsTable).display and domains.has_focus


async def test_a_tall_terminal_keeps_every_pane(app, clock):
    async with app.run_test(size=(120, 40)) as pilot:
        await poll(pilot, clock)
        screen = app.screen
        assert not screen.has_class("-compact")
        assert screen.query_one(HostsTable).display and screen.query_one(LeasesTable).display
        assert not screen.query_one("#hosts-summary").display


async def test_the_footer_never_cuts_a_key_and_ends_with_more(app, demo, clock):
    """At 80 columns it used to end in "x Clea", Mark and Quit gone without a word."""
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot, clock)
        keys = [key for key in app.screen.query(FooterKey) if key.display]
        footer_right = app.screen.query_one("KeysFooter").region.right
        assert all(key.region.right <= footer_right for key in keys)
        assert shown_keys(app)[-1].endswith("more")
    wide = make_app(demo)
    async with wide.run_test(size=(200, 40)) as pilot:
        await poll(pilot, clock)
        assert not any(key.description == "more" for key in wide.screen.query(FooterKey) if key.display)


async def test_columns_are_dropped_whole_not_cut(app, clock):
    async with app.run_test(size=(80, 24)) as pilot:
        await poll(pilot, clock)
        for pane in (app.screen.query_one(DomainsTable), app.screen.query_one(DisksTable)):
            widths = sum(column.get_render_width(pane) for column in pane.columns.values())
            assert widths <= pane.size.width, pane.id
        assert "uuid" not in app.screen.query_one(DomainsTable).shown_columns  # the first to go
        assert app.screen.query_one(DomainsTable).chosen_columns[-1] == "uuid"  # the choice is kept


def test_columns_that_fit_drops_in_order_and_keeps_what_must_stay():
    columns = (("a", "A", 10), ("b", "B", 10), ("c", "C", 10), ("d", "D", None))
    assert columns_that_fit(columns, "abcd", 0, ()) == ("a", "b", "c", "d")
    assert columns_that_fit(columns, "abcd", 36, ("b",)) == ("a", "c")  # d (22 wide) then b
    assert columns_that_fit(columns, "abc", 36, ("b",)) == ("a", "b", "c")
    assert columns_that_fit(columns, "abc", 25, ("a", "b"), keep={"a"}) == ("a", "c")
    assert columns_that_fit(columns, "abc", 5, ()) == ("a",)  # never none


def test_a_terminal_that_reports_no_size_gets_the_compact_layout_and_settles(tmp_path):
    """A pty whose size was never set (a test harness, some serial consoles): Textual starts at 80x25
    and settles at 80x24. The layout follows the terminal's height; it once followed the screen's
    resize events, which then swung between the two for ever, a core busy and no poll shown."""
    import glob
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    import pyte

    def cpu_seconds(pid: int) -> float:
        return sum(int(open(path).read().split()[0]) for path in glob.glob(f"/proc/{pid}/task/*/schedstat")) / 1e9

    main_fd, child_fd = pty.openpty()  # no TIOCSWINSZ: the terminal reports 0x0
    env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "LINES")}
    env.update(TERM="xterm-256color", HOME=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "virttui", "--demo", "--log", str(tmp_path / "log")],
                            stdin=child_fd, stdout=child_fd, stderr=child_fd, env=env, start_new_session=True)
    os.close(child_fd)
    screen = pyte.Screen(80, 24)
    stream = pyte.ByteStream(screen)

    def read_for(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if select.select([main_fd], [], [], 0.05)[0]:
                stream.feed(os.read(main_fd, 65536))

    try:
        deadline = time.monotonic() + 30
        while "web-01" not in "\n".join(screen.display) and time.monotonic() < deadline:
            read_for(0.2)
        read_for(1.0)  # the first polls and the first resize settle
        before = cpu_seconds(proc.pid)
        read_for(2.0)
        busy = (cpu_seconds(proc.pid) - before) / 2.0
        shown = "\n".join(screen.display)
    finally:
        proc.kill()
        proc.wait()
        os.close(main_fd)
    assert "web-01" in shown
    assert "Hosts 3/3 connected" in shown and "H lists hosts" in shown  # the compact layout's summary line
    assert busy < 0.3, f"the console kept {busy:.0%} of a core busy while idle"

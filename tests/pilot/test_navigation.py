"""One navigation model: j k, g G, Home End and PgUp PgDn in every table and viewer; Esc and q one level back."""

from __future__ import annotations

from rich.console import Console
from support.app import poll, settle
from support.pilot import host_of, open_detail
from textual.widgets import DataTable, Sparkline

from virttui.screens.confirm import ConfirmScreen
from virttui.screens.detail import DomainDetailScreen
from virttui.screens.help import HelpScreen, key_rows
from virttui.screens.main import MainScreen
from virttui.widgets.panes import DisksTable, DomainsTable, HostsTable, LeasesTable


def dialog_title(app) -> str:
    return str(app.screen.query_one("#dialog-title").render())


def notices(app) -> list[str]:
    return [str(n.message) for n in app._notifications]  # noqa: SLF001


async def test_every_pane_moves_by_rows_with_the_same_keys(app, demo):
    """Home and End used to scroll a pane sideways and leave its cursor where it was."""
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for pane_type in (DomainsTable, LeasesTable, HostsTable, DisksTable):
            pane = app.screen.query_one(pane_type)
            pane.focus()
            await pilot.press("home")
            assert pane.row_count > 0 and pane.cursor_row == 0, pane_type.__name__
            last = pane.row_count - 1
            await pilot.press("end")
            assert (pane.cursor_row, pane.scroll_x) == (last, 0), pane_type.__name__
            await pilot.press("g")
            assert pane.cursor_row == 0
            await pilot.press("G")
            assert pane.cursor_row == last
            await pilot.press("home", "j", "j", "k")
            assert pane.cursor_row == max(0, min(2, last) - 1)
            await pilot.press("home", "pagedown")
            assert pane.cursor_row > 0 or last == 0
            await pilot.press("home")


async def test_j_then_delete_or_revert_acts_on_the_snapshot_the_cursor_moved_to(app, demo):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        driver, dom = host_of(demo, "web-01")
        for name in ("alpha", "bravo", "charlie"):
            driver.create_snapshot(dom.uuid, name, "")
        screen = await open_detail(pilot, demo, "web-01")
        table = screen.query_one("#snapshots", DataTable)
        assert table.has_focus and table.row_count == 3
        await pilot.press("j")
        assert (table.cursor_row, screen.selected_snapshot().name) == (1, "bravo")
        await pilot.press("delete")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and dialog_title(app) == "Delete snapshot bravo"
        await pilot.press("y")
        await settle(pilot)
        assert [snap.name for snap in driver.snapshots(dom.uuid)] == ["alpha", "charlie"]
        # reloaded: the cursor is on the row that took bravo's place, and that is what v names
        assert (table.cursor_row, screen.selected_snapshot().name) == (1, "charlie")
        await pilot.press("v")
        await pilot.pause()
        assert dialog_title(app) == f"Revert {dom.name}" and "“charlie”" in str(app.screen._body)  # noqa: SLF001
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("g")
        assert screen.selected_snapshot().name == "alpha"
        await pilot.press("end")
        assert screen.selected_snapshot().name == "charlie"
        await pilot.press("home")
        assert screen.selected_snapshot().name == "alpha"


async def test_the_xml_scrolls_up_and_down_with_the_same_keys_and_end_never_sideways(app, demo):
    async with app.run_test(size=(50, 30)) as pilot:
        await settle(pilot)
        screen = await open_detail(pilot, demo, "db-primary")
        pane = screen.query_one("#xml-scroll")
        assert pane.max_scroll_y > 0 and pane.max_scroll_x > 0  # else this test shows nothing
        pane.focus()
        await pilot.press("end")
        await pilot.pause()
        assert (pane.scroll_x, pane.scroll_y) == (0, pane.max_scroll_y)
        await pilot.press("g")
        await pilot.pause()
        assert pane.scroll_y == 0
        await pilot.press("G")
        await pilot.pause()
        assert pane.scroll_y == pane.max_scroll_y
        await pilot.press("home", "j", "j")
        await pilot.wait_for_scheduled_animations()
        assert pane.scroll_y == 2
        await pilot.press("k")
        await pilot.wait_for_scheduled_animations()
        assert pane.scroll_y == 1
        await pilot.press("home", "pagedown")
        await pilot.wait_for_scheduled_animations()
        assert pane.scroll_y > 2 and pane.scroll_x == 0


async def test_q_on_the_detail_screen_goes_back_and_the_console_keeps_running(app, demo):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_detail(pilot, demo, "web-01")
        assert isinstance(app.screen, DomainDetailScreen)
        await pilot.press("q")
        await pilot.pause()
        assert app.is_running and app.return_code is None
        assert isinstance(app.screen, MainScreen)


async def test_a_main_screen_key_on_the_detail_screen_says_where_it_works(app, demo):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_detail(pilot, demo, "web-01")
        await pilot.press("plus")
        await pilot.pause()
        assert notices(app)[-1] == "add hosts on the main screen (Esc)"
        await pilot.press("minus")
        await pilot.pause()
        assert notices(app)[-1] == "remove hosts on the main screen (Esc)"
        assert isinstance(app.screen, DomainDetailScreen)


async def test_help_fits_120x40_and_never_scrolls_sideways(app):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        table = app.screen.query_one("#help-keys", DataTable)
        assert table.virtual_size.width <= table.scrollable_content_region.width
        assert table.max_scroll_y == 0  # every row in view
        await pilot.press("end", "right")
        await pilot.pause()
        assert table.scroll_x == 0
        for closing in ("q", "question_mark", "escape"):
            assert isinstance(app.screen, HelpScreen)
            await pilot.press(closing)
            await pilot.pause()
            assert isinstance(app.screen, MainScreen) and app.is_running, closing
            await pilot.press("question_mark")
            await pilot.pause()


async def test_help_on_a_small_terminal_scrolls_up_and_down_only(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        table = app.screen.query_one("#help-keys", DataTable)
        assert table.max_scroll_y > 0 and table.max_scroll_x == 0
        assert app.screen.query_one("#help-foot").region.bottom <= 24 - 1  # the foot inside the box
        await pilot.press("end")
        await pilot.pause()
        assert (table.scroll_x, table.scroll_y) == (0, table.max_scroll_y)
        await pilot.press("g")
        await pilot.pause()
        assert table.scroll_y == 0
        await pilot.press("G")
        await pilot.pause()
        assert table.scroll_y == table.max_scroll_y
        await pilot.press("g", "pagedown")
        await pilot.wait_for_scheduled_animations()
        assert table.scroll_y > 0 and table.scroll_x == 0


def test_help_says_what_space_does_and_lists_the_movement_keys():
    rows = dict(key_rows())
    assert rows["Space  *"].startswith("mark the domain and move down")
    assert "g G  PgUp PgDn" in rows and "Home End" in rows["g G  PgUp PgDn"]


def drawn(spark: Sparkline) -> list[str]:
    """The sparkline's lines as text, top first."""
    console = Console(width=spark.size.width, color_system=None, legacy_windows=False)
    options = console.options.update(width=spark.size.width, height=spark.size.height)
    return ["".join(segment.text for segment in line)
            for line in console.render_lines(spark.render(), options, pad=False)]


async def test_a_flat_cpu_is_drawn_from_zero_not_stretched_to_full_height(app, demo, clock, monkeypatch):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await poll(pilot, clock)
        screen = await open_detail(pilot, demo, "web-01")
        monkeypatch.setattr(app.fleet, "history", lambda uri, uuid: ([5.4, 6.0, 5.7, 5.9], [0.0, 0.0]))
        screen.refresh_view()
        await pilot.pause()
        spark = screen.query_one("#cpu-spark", Sparkline)
        lines = drawn(spark)
        assert len(lines) == 3
        # 5.4% of a 0-6.0% scale reaches into the top line in every column; scaled from 5.4, the
        # first samples' columns were a bottom bar under two blank lines
        assert " " not in lines[0] and all(line.strip(" ") == line for line in lines)
        assert screen.query(".graph")[0].border_subtitle == "0.0%–6.0% over 4 polls"

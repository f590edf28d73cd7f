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

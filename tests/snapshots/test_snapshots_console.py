"""The operator's console as SVG snapshots: the compact layout, the Leases tab, marks hidden by a
filter, and everything without colour (NO_COLOR), where every state must still read in words."""

from __future__ import annotations

import pytest
from support.app import make_app, poll, settle
from support.pilot import select_by_name


def warm_up(clock, keys=()):  # noqa: ANN001, ANN201
    async def run_before(pilot):  # noqa: ANN001, ANN202
        await settle(pilot)
        for _ in range(2):
            await poll(pilot, clock)
        select_by_name(pilot.app, "web-01")
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        await settle(pilot)

    return run_before


def test_compact_leases_tab_80x24(snap_compare, snapshot_demo, clock):
    assert snap_compare(make_app(snapshot_demo), terminal_size=(80, 24), run_before=warm_up(clock, ["b"]))


def test_marks_hidden_by_the_filter_80x24(snap_compare, snapshot_demo, clock):
    keys = ["space", "down", "space", "slash", *"web-01", "enter"]
    assert snap_compare(make_app(snapshot_demo), terminal_size=(80, 24), run_before=warm_up(clock, keys))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen_without_colour(snap_compare, snapshot_demo, clock, size, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(make_app(snapshot_demo), terminal_size=size, run_before=warm_up(clock, ["space"]))

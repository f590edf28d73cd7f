"""The dialogs as SVG snapshots at 80x24 (and 120x40 where the layout changes): every text wrapped, every
column visible, checkboxes that read [x] or [ ], buttons that follow the dialog's state.

Regenerate with `pytest tests/snapshots/test_snapshots_dialogs.py --snapshot-update` and look at
every changed SVG (snapshot_report.html) before committing it.
"""

from __future__ import annotations

import os

import pytest
from support.app import make_app, settle
from support.pilot import select_by_name
from support.snapshots import SIZES, grouped_app, warm_up

from virttui.locks import ofd
from virttui.widgets.panes import HostsTable

SIZE_IDS = {"ids": lambda s: f"{s[0]}x{s[1]}"}


def undefine(ticked: bool, typed: str = ""):
    async def ask(pilot):
        select_by_name(pilot.app, "backup")
        await pilot.pause()
        await pilot.press("U")
        await pilot.pause()
        if typed:
            await pilot.press(*typed, "enter")  # a typo: the dialog stays, saying why
            await pilot.pause()
        if ticked:
            await pilot.press("tab", "space")
            await pilot.pause()

    return ask


@pytest.mark.parametrize("size", SIZES, **SIZE_IDS)
def test_undefine_dialog_flag_not_ticked(snap_compare, snapshot_demo, clock, size):
    app = make_app(snapshot_demo)
    assert snap_compare(app, terminal_size=size, run_before=warm_up(clock, then=undefine(ticked=False)))


@pytest.mark.parametrize("size", SIZES, **SIZE_IDS)
def test_undefine_dialog_flag_ticked_after_a_typo(snap_compare, snapshot_demo, clock, size):
    app = make_app(snapshot_demo)
    assert snap_compare(app, terminal_size=size,
                        run_before=warm_up(clock, then=undefine(ticked=True, typed="backpu")))


@pytest.mark.parametrize("size", SIZES, **SIZE_IDS)
def test_cleanup_dialog_preview(snap_compare, snapshot_demo, clock, size):
    async def preview(pilot):
        await pilot.press("x")

    app = make_app(snapshot_demo)
    assert snap_compare(app, terminal_size=size, run_before=warm_up(clock, then=preview))


@pytest.mark.parametrize("size", SIZES, **SIZE_IDS)
def test_cleanup_dialog_after_a_run_that_kept_a_held_lease(snap_compare, snapshot_demo, clock, size):
    held: list[int] = []

    async def run(pilot):
        await pilot.press("x")
        await pilot.pause()
        screen = pilot.app.screen
        fd = os.open(screen.candidates[0].path, os.O_RDWR)  # taken elsewhere after the preview
        held.append(fd)
        assert ofd.try_lock(fd)
        await pilot.press("y")
        await settle(pilot)

    app = make_app(snapshot_demo)
    try:
        assert snap_compare(app, terminal_size=size, run_before=warm_up(clock, then=run))
    finally:
        for fd in held:
            os.close(fd)


def test_cleanup_dialog_with_nothing_to_remove(snap_compare, snapshot_demo, clock):
    async def clean_twice(pilot):
        await pilot.press("x")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("x")
        await pilot.pause()

    app = make_app(snapshot_demo)
    assert snap_compare(app, terminal_size=(80, 24), run_before=warm_up(clock, then=clean_twice))


@pytest.mark.parametrize("size", SIZES, **SIZE_IDS)
def test_add_host_dialog_with_a_long_error(snap_compare, snapshot_demo, clock, size):
    async def ask(pilot):
        hosts = pilot.app.screen.query_one(HostsTable)
        hosts.focus()
        await pilot.press("down", "down", "plus")
        await pilot.pause()
        await pilot.press(*"hv9", "enter")
        await pilot.pause()

    assert snap_compare(grouped_app(snapshot_demo), terminal_size=size, run_before=warm_up(clock, then=ask))


def test_columns_dialog_reads_x_or_blank(snap_compare, snapshot_demo, clock):
    async def choose(pilot):
        await pilot.press("C")
        await pilot.pause()
        await pilot.press("down", "down", "down", "down", "down", "space")  # UUID off

    assert snap_compare(grouped_app(snapshot_demo), terminal_size=(80, 24),
                        run_before=warm_up(clock, then=choose))


def test_memory_stats_period_dialog(snap_compare, snapshot_demo, clock):
    async def ask(pilot):
        select_by_name(pilot.app, "db-primary")
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("m")
        await pilot.pause()

    app = make_app(snapshot_demo)
    assert snap_compare(app, terminal_size=(80, 24), run_before=warm_up(clock, then=ask))

"""Screens as SVG snapshots at 80x24 and 120x40, from fixed data and a stepped clock.

Regenerate with `pytest tests/snapshots/test_snapshots.py --snapshot-update` and look at
every changed SVG (snapshot_report.html) before committing it.
"""

from __future__ import annotations

import pytest
from support.app import make_app, poll, settle
from support.pilot import select_by_name
from support.snapshots import SIZES, grouped_app, warm_up

from virttui.console.app import VirtTUI
from virttui.drivers.errors import ConnectionFailed
from virttui.drivers.registry import UnavailableDriver
from virttui.widgets.panes import HostsTable


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen(snap_compare, snapshot_demo, clock, size):
    app = make_app(snapshot_demo)
    assert snap_compare(app, terminal_size=size, run_before=warm_up(clock))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_detail_screen(snap_compare, snapshot_demo, clock, size):
    async def open_detail(pilot):
        select_by_name(pilot.app, "db-primary")
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        for _ in range(6):
            await poll(pilot, clock)

    app = make_app(snapshot_demo)
    assert snap_compare(app, terminal_size=size, run_before=warm_up(clock, then=open_detail))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help_screen(snap_compare, snapshot_demo, clock, size):
    async def open_help(pilot):
        await pilot.press("question_mark")

    app = make_app(snapshot_demo)
    assert snap_compare(app, terminal_size=size, run_before=warm_up(clock, then=open_help))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_force_off_confirmation(snap_compare, snapshot_demo, clock, size):
    async def ask(pilot):
        select_by_name(pilot.app, "web-01")
        await pilot.pause()
        await pilot.press("f")

    app = make_app(snapshot_demo)
    assert snap_compare(app, terminal_size=size, run_before=warm_up(clock, then=ask))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_lease_cleanup_preview(snap_compare, snapshot_demo, clock, size):
    async def preview(pilot):
        await pilot.press("x")

    app = make_app(snapshot_demo)
    assert snap_compare(app, terminal_size=size, run_before=warm_up(clock, then=preview))


UNREACHABLE = "qemu+ssh://root@127.0.0.1:1/system"


class Unreachable(UnavailableDriver):
    """A host that refuses the connection, with the words paramiko used when the snapshot was made: the
    picture must not change with the network or a paramiko release (the real connect is in test_pilot)."""

    def __init__(self, uri: str) -> None:
        super().__init__(uri, f"{uri}: cannot connect to [127.0.0.1]:1: Unable to connect to port 1 on 127.0.0.1")

    def connect(self) -> None:
        raise ConnectionFailed(self.error)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_host_in_error_state(snap_compare, snapshot_demo, clock, size):
    app = VirtTUI([*snapshot_demo.drivers, Unreachable(UNREACHABLE)], autopoll=False)
    assert snap_compare(app, terminal_size=size, run_before=warm_up(clock))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_undefine_dialog(snap_compare, snapshot_demo, clock, size):
    async def ask(pilot):
        select_by_name(pilot.app, "backup")
        await pilot.pause()
        await pilot.press("U")
        await pilot.pause()

    app = make_app(snapshot_demo)
    assert snap_compare(app, terminal_size=size, run_before=warm_up(clock, then=ask))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_detail_with_a_snapshot_and_the_new_snapshot_form(snap_compare, snapshot_demo, clock, size):
    async def form(pilot):
        select_by_name(pilot.app, "db-primary")
        uri, dom = pilot.app.screen.selected_domain()
        driver = pilot.app.scheduler.driver(uri)
        driver.wall_clock = lambda: 1795657826.0  # a fixed date for a fixed picture
        driver.create_snapshot(dom.uuid, "before-upgrade", "known good")
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("n")
        await pilot.pause()
        await pilot.press(*"nightly")

    app = make_app(snapshot_demo)
    assert snap_compare(app, terminal_size=size, run_before=warm_up(clock, then=form))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_hosts_tree_with_a_group_selected(snap_compare, snapshot_demo, clock, size):
    async def pick_group(pilot):
        hosts = pilot.app.screen.query_one(HostsTable)
        hosts.focus()
        await pilot.press("down", "down")  # all → hv1 → rack-a
        await pilot.pause()

    assert snap_compare(grouped_app(snapshot_demo), terminal_size=size, run_before=warm_up(clock, then=pick_group))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_add_host_dialog(snap_compare, snapshot_demo, clock, size):
    async def ask(pilot):
        hosts = pilot.app.screen.query_one(HostsTable)
        hosts.focus()
        await pilot.press("down", "down", "plus")
        await pilot.pause()
        await pilot.press(*"qemu+ssh://root@hv4/system")

    assert snap_compare(grouped_app(snapshot_demo), terminal_size=size, run_before=warm_up(clock, then=ask))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_columns_dialog(snap_compare, snapshot_demo, clock, size):
    async def choose(pilot):
        await pilot.press("C")
        await pilot.pause()
        await pilot.press("down", "down", "down", "down", "down", "space")  # UUID off

    assert snap_compare(grouped_app(snapshot_demo), terminal_size=size, run_before=warm_up(clock, then=choose))

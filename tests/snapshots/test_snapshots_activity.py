"""The activity screen (L) as an SVG snapshot at 80x24, its times from a fixed clock.

Regenerate with `pytest tests/snapshots/test_snapshots_activity.py --snapshot-update` and look at
the changed SVG before committing it.
"""

from __future__ import annotations

import time

from support.app import lost_connection, make_app, poll, settle
from support.pilot import select

# 09:30:00 local time whatever the time zone, so the picture is the same everywhere
NINE_THIRTY = time.mktime((2025, 1, 6, 9, 30, 0, 0, 0, -1))


def test_activity_screen(snap_compare, snapshot_demo, clock):
    start = clock()
    app = make_app(snapshot_demo)
    app.activity.clock = lambda: NINE_THIRTY + clock() - start

    async def produce_and_open(pilot):
        await settle(pilot)
        await select(pilot, snapshot_demo, "build-runner")
        await pilot.press("s")  # done
        await poll(pilot, clock)
        await select(pilot, snapshot_demo, "web-standby")
        await pilot.press("s")  # fails: its disk's lease is web-01's
        await poll(pilot, clock)
        snapshot_demo.drivers[1].poll = lost_connection
        await poll(pilot, clock, 30)
        pilot.app.notify("[b]not markup[/b]: a name from a host", severity="warning", markup=False)
        await pilot.press("L")
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=produce_and_open)

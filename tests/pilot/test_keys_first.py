"""On a large fleet a poll's redraw waits while the operator is typing, for a bounded time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bench.fleet import FleetSpec, fleet_files, open_drivers
from bench.probe import domain_rows
from support.app import settle
from textual.pilot import Pilot

from virttui.console.app import VirtTUI
from virttui.drivers.base import Action
from virttui.drivers.model import DomainState
from virttui.widgets.panes import DomainsTable

SIX_HUNDRED = FleetSpec(6, 100)  # above keysfirst.LARGE_FLEET


def _state_shown(domains: DomainsTable, name: str) -> str:
    columns, rows = domain_rows(domains)
    row = next(row for row in rows if row[columns.index("Name")] == name)
    return row[columns.index("State")]


@asynccontextmanager
async def a_guest_started_just_after_a_key() -> AsyncIterator[tuple[Pilot, DomainsTable, str]]:
    """600 domains polled and shown; a key in Domains, then a shut-off guest started and its host
    polled (the fleet has it): the pilot, the Domains pane and the guest's name."""
    with fleet_files(SIX_HUNDRED, leases=False) as uris:
        app = VirtTUI(open_drivers(uris), poll_interval=2.0, autopoll=False)
        async with app.run_test(size=(120, 40)) as pilot:
            app.scheduler.poll_all()
            await settle(pilot)
            uri = app.fleet.uris[0]
            stopped = next(dom for dom in app.fleet.snapshot(uri).domains if dom.state is DomainState.SHUT_OFF)
            domains = app.screen.query_one(DomainsTable)
            domains.focus()
            await pilot.press("down")
            app.scheduler.driver(uri).perform(stopped.uuid, Action.START)
            app.scheduler.poll_now(uri)
            await settle(pilot)
            assert app.fleet.domain(uri, stopped.uuid).state is DomainState.RUNNING  # applied at once
            yield pilot, domains, stopped.name


async def test_a_poll_after_a_key_is_drawn_when_the_keys_pause_on_a_large_fleet(monkeypatch):
    from virttui.screens import keysfirst

    monkeypatch.setattr(keysfirst, "KEY_QUIET", 1.5)  # wide margins: a loaded CI machine is slow
    monkeypatch.setattr(keysfirst, "MAX_WAIT", 3.0)
    async with a_guest_started_just_after_a_key() as (_pilot, domains, name):
        assert _state_shown(domains, name) == "shut off"  # drawn later: keys come first
        for _ in range(40):  # drawn once the keys paused (1.5 s here)
            await asyncio.sleep(0.1)
            if _state_shown(domains, name) == "running":
                break
        assert _state_shown(domains, name) == "running"


async def test_holding_a_key_down_never_holds_a_poll_back_past_the_bound(monkeypatch):
    from virttui.screens import keysfirst

    monkeypatch.setattr(keysfirst, "KEY_QUIET", 1.0)
    monkeypatch.setattr(keysfirst, "MAX_WAIT", 1.5)
    async with a_guest_started_just_after_a_key() as (pilot, domains, name):
        loop = asyncio.get_running_loop()
        polled_at = loop.time()
        shown_at = None
        while loop.time() - polled_at < 4.0:  # a key every 0.2 s, as a held key repeats (slower)
            await pilot.press("down" if int(loop.time() * 5) % 2 else "up")
            if shown_at is None and _state_shown(domains, name) == "running":
                shown_at = loop.time()
            await asyncio.sleep(0.2)
        assert shown_at is not None and shown_at - polled_at < 1.5 + 1.0  # the bound, and a margin

"""Waiting on real hosts: a domain chosen in the console, a condition come true."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from support.app import settle
from virttui.widgets.panes import DomainsTable, domain_key


async def select_domain(pilot, uri: str, uuid: str) -> None:  # noqa: ANN001
    """The Domains cursor on the domain, once its row is in the pane (the fleet may know it a frame earlier)."""
    table = pilot.app.screen.query_one(DomainsTable)
    key = domain_key(uri, uuid)
    deadline = time.monotonic() + 10
    while key not in {row.value for row in table.rows} and time.monotonic() < deadline:
        await pilot.pause(0.05)
    table.follow_key = True
    table.move_to_key(key)
    await pilot.pause()
    assert pilot.app.screen.selected_domain()[1].uuid == uuid


async def until(pilot, predicate, timeout: float = 30.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await settle(pilot)
        if predicate():
            return
        await pilot.pause(0.1)
    raise AssertionError("the console never showed the expected state")


def uri_with_known_hosts(host, path: str) -> str:  # noqa: ANN001
    base, _, query = host.ssh_uri.partition("?")
    params = [p for p in query.split("&") if p and not p.startswith("known_hosts=")]
    return f"{base}?{'&'.join(params + [f'known_hosts={path}'])}"


def wait_until(check: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> object:
    """Poll check() until it returns something truthy; fail with what after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)

"""Moving around the demo console as the operator does, for Pilot tests."""

from __future__ import annotations

from support.app import settle
from virttui.widgets.panes import DomainsTable, domain_key


def host_of(demo, name):
    for driver in demo.drivers:
        for dom in driver.poll().domains:
            if dom.name == name:
                return driver, dom
    raise KeyError(name)


async def select(pilot, demo, name):
    """Put the Domains cursor on a domain, as the operator would with the arrow keys."""
    driver, dom = host_of(demo, name)
    table = pilot.app.screen.query_one(DomainsTable)
    table.follow_key = True
    table.move_to_key(domain_key(driver.uri, dom.uuid))
    await pilot.pause()
    assert pilot.app.screen.selected_domain()[1].name == name


async def open_detail(pilot, demo, name):
    """Enter on a domain, as the operator opens its detail screen; returns that screen."""
    await select(pilot, demo, name)
    await pilot.press("enter")
    await settle(pilot)
    return pilot.app.screen


def visible_names(app):
    table = app.screen.query_one(DomainsTable)
    return [table.get_row_at(i)[0].text for i in range(table.row_count)]


def notices(app) -> list[str]:  # noqa: ANN001
    """Every notification shown so far, oldest first."""
    return [str(n.message) for n in app._notifications]  # noqa: SLF001


def select_by_name(app, name: str) -> None:  # noqa: ANN001
    """Put the Domains cursor on the first domain of that name, without waiting (snapshot set-ups)."""
    for uri in app.fleet.uris:
        snap = app.fleet.snapshot(uri)
        for dom in snap.domains if snap else ():
            if dom.name == name:
                table = app.screen.query_one(DomainsTable)
                table.follow_key = True
                table.move_to_key(domain_key(uri, dom.uuid))
                return
    raise KeyError(name)


def state_of(demo, name: str):  # noqa: ANN001, ANN201
    """The state the demo's host has for the domain now (not what the console shows)."""
    return host_of(demo, name)[1].state

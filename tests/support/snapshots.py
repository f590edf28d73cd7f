"""What the snapshot tests share: the two terminal sizes, a warm-up before the picture, the demo grouped."""

from __future__ import annotations

from support.app import poll, settle
from virttui.config import Config
from virttui.console.app import VirtTUI

SIZES = [(80, 24), (120, 40)]


def warm_up(clock, polls=2, then=None):  # noqa: ANN001, ANN201
    """run_before: take a few polls so rates and sparklines have data, then do `then`."""

    async def run_before(pilot):  # noqa: ANN001, ANN202
        await settle(pilot)
        for _ in range(polls):
            await poll(pilot, clock)
        if then is not None:
            await then(pilot)
        await settle(pilot)

    return run_before


def grouped_app(demo) -> VirtTUI:  # noqa: ANN001
    """The demo with hv2 and hv3 in one group; the config is never written by these pictures."""
    uris = tuple(driver.uri for driver in demo.drivers)
    config = Config(hosts=uris, path="/nonexistent/virttui/config.toml",
                    groups=((uris[1], "rack-a"), (uris[2], "rack-a")))
    return VirtTUI(demo.drivers, autopoll=False, config=config)

"""Helpers for Pilot and snapshot tests: drive polling by hand, wait for it to land."""

from __future__ import annotations

from textual.pilot import Pilot

from virttui.app import VirtTUI
from virttui.demo import Demo


def make_app(demo: Demo) -> VirtTUI:
    """The console over the demo with polling driven by the test, not by timers."""
    return VirtTUI(demo.drivers, poll_interval=2.0, autopoll=False)


async def settle(pilot: Pilot) -> None:
    """Wait until every worker finished and every message it sent was handled."""
    for _ in range(20):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if not any(worker.is_running for worker in pilot.app.workers):
            break
    await pilot.pause()


async def poll(pilot: Pilot, clock, seconds: float = 2.0) -> None:  # noqa: ANN001 - SteppedClock
    """Step the clock and poll every host once, as one refresh would."""
    clock.advance(seconds)
    pilot.app.scheduler.poll_all()
    await settle(pilot)

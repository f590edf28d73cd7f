"""Helpers for Pilot and snapshot tests: drive polling by hand, wait for it to land."""

from __future__ import annotations

import subprocess
import sys

from textual.pilot import Pilot

from virttui.console.app import VirtTUI
from virttui.demo import Demo
from virttui.drivers.errors import ConnectionFailed


def make_app(demo: Demo) -> VirtTUI:
    """The console over the demo with polling driven by the test, not by timers."""
    return VirtTUI(demo.drivers, poll_interval=2.0, autopoll=False)


def lost_connection() -> None:
    """Stands in for a driver's poll (or connect) when its host has gone away."""
    raise ConnectionFailed("ssh: connection reset")


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


def run_python(code: str) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter (what gets imported, and when, is the point of such tests);
    fails the test unless it exits 0."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out

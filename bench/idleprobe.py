"""Idle probe: `python -m bench.idleprobe SECONDS -- VIRTTUI ARGS...`.

Runs the real console headless (built exactly as `virttui` builds it), waits
until every host has been polled, then sits idle for SECONDS at the normal
refresh and prints `cpu_percent=` (this process plus the virsh children it
reaped, as a share of one core over the idle window) and `rss_kib=`.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time

from bench.stats import rss_kib


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(argv: list[str]) -> int:
    seconds = float(argv[0])
    args = argv[argv.index("--") + 1:] if "--" in argv else []
    from virttui.cli import _setup_logging, build_parser, open_hosts
    from virttui.drivers.model import ConnectionState

    parsed = build_parser().parse_args(args)
    _setup_logging(parsed.log)
    from virttui.console.app import VirtTUI

    with open_hosts(parsed) as (drivers, interval, config):
        app = VirtTUI(drivers, poll_interval=interval, contain_errors=True, config=config)
        result: dict[str, float] = {}

        async def measure(pilot) -> None:  # noqa: ANN001 - Textual's Pilot, given by run(auto_pilot=…)
            while not all(app.fleet.host(d.uri).state is ConnectionState.CONNECTED for d in drivers):
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # the first polls and XML fetches are start-up, not idle
            cpu0, wall0 = _cpu_seconds(), time.monotonic()
            await asyncio.sleep(seconds)
            result["cpu_percent"] = (_cpu_seconds() - cpu0) / (time.monotonic() - wall0) * 100
            result["rss_kib"] = rss_kib()
            app.exit()

        app.run(headless=True, size=(160, 50), auto_pilot=measure)
    for key, value in result.items():
        print(f"{key}={value}")
    return 0 if result else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

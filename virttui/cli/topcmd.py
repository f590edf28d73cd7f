"""`virttui top --batch`: per-domain stats streamed, like virt-top -b."""

from __future__ import annotations

import argparse

from virttui.cli.hosts import open_hosts
from virttui.cli.output import UsageError


def cmd_top(args: argparse.Namespace) -> int:
    from virttui.cli.topbatch import run_batch

    if args.delay is not None and not 0.1 <= args.delay <= 86400:
        raise UsageError("-d/--delay must be between 0.1 and 86400 seconds")
    if args.iterations is not None and args.iterations < 1:
        raise UsageError("-n/--iterations must be at least 1")
    with open_hosts(args) as (drivers, interval, _):
        fmt = "csv" if args.csv else "json" if args.json else "text"
        return run_batch(drivers, delay=args.delay or interval, iterations=args.iterations, fmt=fmt)

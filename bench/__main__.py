"""`python -m bench [--quick] [--only NAME]`: print every figure with its target.

The real-stack benchmarks start private libvirt test hosts with the harness in
the checkout's tests/realstack (they need root and Debian's libvirt, as the
test suite does); from an installed wheel only the embedded benchmarks run.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

from bench import CHECKOUT
from bench.stats import Table


def _harness():  # noqa: ANN202 - tests/realstack/harness.py's module, or None outside a checkout
    tests = CHECKOUT / "tests"
    if not (tests / "realstack" / "harness.py").exists():
        return None
    sys.path.insert(0, str(tests))
    from realstack import harness

    return harness


def machine() -> str:
    cpus = os.cpu_count() or 0
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = 0.0
    return f"{platform.machine()}, {cpus} CPUs, {mem:.0f} GiB, Python {platform.python_version()}"


BENCHMARKS = ["scale", "keys", "start", "poll", "peer", "leases", "soak"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats: a smoke run")
    parser.add_argument("--only", action="append", choices=BENCHMARKS, help="run only these benchmarks")
    args = parser.parse_args(argv)
    wanted = set(args.only or BENCHMARKS)
    table = Table()
    print(f"virttui benchmarks ({'quick' if args.quick else 'full'}) on {machine()}", flush=True)
    from bench.keys import bench_keys
    from bench.scale import bench_scale
    from bench.start import bench_start

    for name, bench in (("scale", bench_scale), ("keys", bench_keys), ("start", bench_start)):
        if name in wanted:
            bench(table, quick=args.quick)
    if "start" in wanted:
        harness = _harness()
        if harness is not None:
            from bench.start import bench_start_real

            with harness.RealStack.start(1, sanlock=True) as stack:
                bench_start_real(table, stack, quick=args.quick)
    if "poll" in wanted:
        harness = _harness()
        if harness is None:
            print("real-stack benchmarks need a checkout (tests/realstack); skipped", file=sys.stderr)
        else:
            from bench.realpoll import bench_poll

            with harness.RealStack.start(1) as stack:
                bench_poll(table, stack, quick=args.quick)
    if "peer" in wanted:
        harness = _harness()
        if harness is not None:
            from bench.peer import bench_peer

            with harness.RealStack.start(1) as stack:
                bench_peer(table, stack, quick=args.quick)
    if "leases" in wanted:
        harness = _harness()
        if harness is not None:
            from bench.leases import bench_leases

            with harness.RealStack.start(2, sanlock=True) as stack:
                bench_leases(table, stack, quick=args.quick)
    if "soak" in wanted:
        from bench.soak import bench_soak

        harness = _harness()
        if harness is None:
            bench_soak(table, None, quick=args.quick)
        else:
            with harness.RealStack.start(1) as stack:
                bench_soak(table, stack, quick=args.quick)
    print(table.render())
    return 0


if __name__ == "__main__":
    sys.exit(main())

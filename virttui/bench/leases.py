"""Lease status and cleanup on real sanlock, against Debian's virt-sanlock-cleanup.

The set-up (N stale leases plus H leases held by the other host) is built
twice the same way in one run; one build is cleaned by virt-sanlock-cleanup
inside host 1, the other by virttui over SSH to host 1. Both must leave the
same files; the figure is the time ratio.
"""

from __future__ import annotations

import os
import statistics
import time

from virttui.bench.stats import Table
from virttui.drivers.registry import open_driver
from virttui.locks.naming import sanlock_lease_name


def _build(stack, stale: list[str], held: list[str]) -> list:  # noqa: ANN001 - RealStack, LeaseHold
    for name in stale:
        stack.make_stale_lease(name)
    return [stack.hosts[1].hold_lease(name) for name in held]


def _clear(stack, names: list[str], holds: list) -> None:  # noqa: ANN001
    for hold in holds:
        hold.release()
    for name in names:
        try:
            os.unlink(os.path.join(stack.lease_dir, name))
        except FileNotFoundError:
            pass


def bench_leases(table: Table, stack, *, quick: bool) -> None:  # noqa: ANN001 - RealStack with sanlock
    """Rounds of (virt-sanlock-cleanup, virttui) on the same set-up, interleaved: this machine's disk
    speed drifts by tens of percent within minutes, so one pair could land in a fast spell for one
    cleaner and a slow one for the other; the figure is the median of the rounds' ratios."""
    n_stale, n_held, rounds = (100, 5, 1) if quick else (1000, 20, 3)
    stale = [sanlock_lease_name(f"/bench/stale/{i}") for i in range(n_stale)]
    held = [sanlock_lease_name(f"/bench/held/{i}") for i in range(n_held)]
    everything = set(stale + held)
    host = stack.hosts[0]
    driver = open_driver(host.ssh_uri)
    driver.connect()
    timings: dict[str, list[float]] = {"status": [], "virt-sanlock-cleanup": [], "virttui": []}
    same = True
    try:
        manager = driver.lease_manager()
        for _round in range(rounds):
            results = {}
            for cleaner in ("virt-sanlock-cleanup", "virttui"):
                holds = _build(stack, stale, held)
                try:
                    if cleaner == "virttui":
                        started = time.perf_counter()
                        snap = manager.snapshot()
                        timings["status"].append(time.perf_counter() - started)
                        assert len([f for f in snap.files if f.name in everything]) == len(everything)
                        started = time.perf_counter()
                        manager.cleanup()
                    else:
                        started = time.perf_counter()
                        host.run("virt-sanlock-cleanup", "-q", timeout=600)
                    timings[cleaner].append(time.perf_counter() - started)
                    results[cleaner] = set(os.listdir(stack.lease_dir)) & everything
                finally:
                    _clear(stack, stale + held, holds)
            same = same and results["virttui"] == results["virt-sanlock-cleanup"] == set(held)
    finally:
        driver.close()
    ratios = [ours / theirs for ours, theirs in zip(timings["virttui"], timings["virt-sanlock-cleanup"], strict=True)]
    table.add(f"lease status, {len(everything)} lease files (ssh), median", statistics.median(timings["status"]),
              "s", 1.0)
    for index, (theirs, ours) in enumerate(zip(timings["virt-sanlock-cleanup"], timings["virttui"], strict=True), 1):
        table.add(f"round {index}: virt-sanlock-cleanup, {n_stale} stale + {n_held} held", theirs, "s")
        table.add(f"round {index}: virttui leases cleanup (ssh), same set-up: ratio {ratios[index - 1]:.2f}",
                  ours, "s")
    table.add(f"cleanup time / virt-sanlock-cleanup, median of {rounds}", statistics.median(ratios), "x", 0.3)
    table.add("cleanup left the same files as virt-sanlock-cleanup (1 = yes)", float(same), "", 1.0,
              higher_is_better=True)

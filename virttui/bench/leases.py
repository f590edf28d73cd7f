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


def _disk_busy_reader(path: str):  # noqa: ANN202 - () -> seconds, or None
    """A reader of the busy time (io_ticks) of the block device holding path, or None (tmpfs, NFS).

    It is the floor under any cleaner here: this disk serves one request at a time (1 to 8
    concurrent 1 MiB direct readers all get ~1.0-1.3 GiB/s), and sanlock's own reads and
    writes for each acquisition are most of what keeps it busy."""
    dev = os.stat(path).st_dev
    stat_path = f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}/stat"
    if not os.path.exists(stat_path):
        return None

    def busy_seconds() -> float:
        with open(stat_path, encoding="ascii") as handle:
            return int(handle.read().split()[9]) / 1000  # field 10: io_ticks, ms
    return busy_seconds


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
    busy: dict[str, list[float]] = {"virt-sanlock-cleanup": [], "virttui": []}
    disk_busy = _disk_busy_reader(str(stack.lease_dir))
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
                    busy_before = disk_busy() if disk_busy else 0.0
                    started = time.perf_counter()
                    if cleaner == "virttui":
                        manager.cleanup()
                    else:
                        host.run("virt-sanlock-cleanup", "-q", timeout=600)
                    timings[cleaner].append(time.perf_counter() - started)
                    if disk_busy:
                        busy[cleaner].append(disk_busy() - busy_before)
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
    if busy["virttui"] and all(busy["virttui"]):  # (a quick run may not move io_ticks at all)
        for index, (theirs, ours) in enumerate(zip(busy["virt-sanlock-cleanup"], busy["virttui"], strict=True), 1):
            table.add(f"round {index}: disk busy (io_ticks) during virt-sanlock-cleanup",
                      theirs, "s")
            table.add(f"round {index}: disk busy during virttui's cleanup", ours, "s")
        floors = [ours / theirs for ours, theirs in zip(busy["virttui"], timings["virt-sanlock-cleanup"], strict=True)]
        table.add(f"disk busy during virttui's cleanup / virt-sanlock-cleanup's time, median of {rounds}",
                  statistics.median(floors), "x")
        table.add(f"virttui's cleanup time / disk busy during it, median of {rounds}",
                  statistics.median([t / b for t, b in zip(timings["virttui"], busy["virttui"], strict=True)]), "x")
    table.add(f"cleanup time / virt-sanlock-cleanup, median of {rounds}", statistics.median(ratios), "x", 0.3)
    table.add("cleanup left the same files as virt-sanlock-cleanup (1 = yes)", float(same), "", 1.0,
              higher_is_better=True)

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

from bench.stats import Table
from virttui.drivers.registry import open_driver
from virttui.locks.embedded import write_free_lease
from virttui.locks.model import LeaseState
from virttui.locks.naming import sanlock_lease_name
from virttui.locks.readers import ELECTION
from virttui.locks.sharing import merge_views
from virttui.locks.status import compute_lease_status


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
    bench_lease_reads(table, stack, quick=quick)


POLL_SECONDS = 2.0  # the console's default poll interval


def bench_lease_reads(table: Table, stack, *, quick: bool) -> None:  # noqa: ANN001 - RealStack with sanlock
    """Storage reads the console causes on a shared lease directory, polled as the console polls (every
    2 s, leases on): one SSH host, then both; and how soon a lease taken by a connected host, or by one
    the console is not connected to, shows. A window spans at least one pass over the files."""
    files = 200 if quick else 2000
    slow = 3.0 if quick else 30.0
    window = 2 * slow + 1
    paths = [write_free_lease(str(stack.lease_dir), f"/bench/poll/{i}") for i in range(files)]
    saved = ELECTION.slow_interval
    ELECTION.slow_interval = slow
    drivers = [open_driver(host.ssh_uri) for host in stack.hosts]
    try:
        for driver in drivers:
            driver.connect()
        rates = {}
        for count in (1, 2):
            polled = drivers[:count]
            while not all(getattr(driver.poll().leases, "complete", True) for driver in polled):
                time.sleep(POLL_SECONDS)  # the first pass reads every file once, paced: steady state comes after
            before = sum(driver.lease_manager().reads for driver in polled)
            deadline = time.monotonic() + window
            while time.monotonic() < deadline:
                time.sleep(POLL_SECONDS)
                for driver in polled:
                    driver.poll()
            rates[count] = (sum(driver.lease_manager().reads for driver in polled) - before) / window
        table.add(f"storage reads/s, 1 ssh host, {files} lease files, steady (2 s polls)", rates[1], "/s", 20.0)
        table.add("storage reads/s, 2 ssh hosts sharing them / 1 host's", rates[2] / max(rates[1], 1e-9), "x", 1.2)
        table.add("lease taken by a connected host: on screen after", _shows(stack, drivers, "connected"), "s",
                  POLL_SECONDS + 0.5)
        table.add(f"lease taken by a host not connected: on screen after (slow interval {slow:g} s)",
                  _shows(stack, drivers[:1], "elsewhere"), "s", slow + POLL_SECONDS)
    finally:
        ELECTION.slow_interval = saved
        for driver in drivers:
            driver.close()
        for path in paths:
            os.unlink(path)


def _shows(stack, drivers: list, tag: str) -> float:  # noqa: ANN001 - RealStack
    """Seconds from host 2 taking a lease until the merged view of `drivers`, polled every 2 s, shows it held."""
    name = sanlock_lease_name(f"/bench/show/{tag}")
    stack.make_stale_lease(name)
    for driver in drivers:
        driver.poll()
    hold = stack.hosts[1].hold_lease(name)
    started = time.monotonic()
    try:
        while time.monotonic() - started < 120:
            time.sleep(POLL_SECONDS)  # the hold came just after a poll: the worst case, a whole interval
            views = [driver.poll().leases for driver in drivers]
            rows = {row.name: row for row in compute_lease_status(merge_views(views), [])}
            if name in rows and rows[name].state is LeaseState.HELD:
                return time.monotonic() - started
        return float("inf")
    finally:
        hold.release()
        os.unlink(os.path.join(stack.lease_dir, name))

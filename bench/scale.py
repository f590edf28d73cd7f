"""The console at scale: 20 embedded hosts × 100 domains (2000 domains, 4000 disks), headless.

`bench_scale`, `bench_keys` and `bench_start` each add rows to a Table; run them
alone with `python -m bench.scale [--quick]`.

The real VirtTUI app runs in this process over libvirt test-driver node files
written into a temp dir, one per host, 90 % of the guests running (their CPU and
disk counters move on every poll), 5 % paused, 5 % shut off. Nothing in the app
is replaced: the probe only wraps a few methods on the instances
(scheduler.finished, broadcast_fleet, App._display and the tables' writing
methods) to see when work lands and how much was written. Every host shares one
lease directory holding a lease file per disk of every domain (free, or held by
the host running it), as a cluster has; what the lease view costs the storage,
and how soon a lease change shows, are figures of their own.

"Screen updated" means painted: the compositor rendered the frame and, since a
headless app skips the terminal, the probe also encodes that frame into the
escape sequences a terminal would receive, so the cost of a repaint is in every
figure. "Settled" is the first such frame after which no message is waiting and
no widget wants a repaint (so every pane the change touches is drawn); a change
spread over two frames pays Textual's frame pacing (60 fps; after an idle spell
the second frame comes up to two ticks, ~33 ms, after the first).

Keys are posted to the app exactly as a terminal driver posts them. `pilot.press`
is not what is timed because it sleeps at least 2×20 ms waiting for the process
to look idle (textual._wait.wait_for_idle), which measures the test harness, not
the console; its figure is printed for comparison only.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from bench.baseline import measure_refresh
from bench.fleet import FULL, LEASE_SLOW, POLL, QUICK, SIZE, FleetSpec, fleet_files, open_drivers
from bench.probe import TABLE_METHODS, Probe, all_polled, cpu_seconds, domain_rows, negated, rss_mib, warm_up
from bench.start import start_once
from bench.stats import Table, median_ms, p95_ms

if TYPE_CHECKING:
    from virttui.console.app import VirtTUI

REFRESH_TARGET = 2.0  # the full refresh's p95 at most this many times the minimal app's repaint, same run


def bench_scale(table: Table, *, quick: bool) -> None:
    """Idle CPU at the default 2 s refresh, full-refresh p95, RSS, what each poll writes to the tables,
    and what the shared lease directory costs: reads per second, and how soon a lease change shows."""
    spec = QUICK if quick else FULL
    window = 4.0 if quick else 20.0
    refreshes = 5 if quick else 100  # p95 of 30 was the second-worst sample: too much luck in it
    changes = 1 if quick else 3  # lease changes timed, and process starts
    files = spec.hosts * spec.domains * spec.disks
    with fleet_files(spec) as uris:
        # a process of its own (before the in-process app below holds the running guests' leases)
        starts = [start_once(["--", *[arg for uri in uris for arg in ("-c", uri)]])[0] for _ in range(changes)]
        results, (columns, rows) = asyncio.run(_scale(uris, window, refreshes, changes))
    cells = round(results["refresh_cells"])
    base = asyncio.run(measure_refresh(columns, rows, size=SIZE, repeat=refreshes, cells=cells))
    table.add(f"scale: fleet ({spec.label}, {files} shared lease files), hosts connected", results["connected"],
              "hosts")
    table.add(f"scale: first domains on screen (process start), median of {len(starts)}",
              statistics.median(starts), "s", 3)
    table.add(f"scale: idle CPU at the 2 s refresh ({window:.0f} s window)", results["cpu"], "% of a core", 15)
    table.add("scale: host polls handled per second while idle", results["polls_per_s"], "/s")
    table.add("scale: frames painted per second while idle", results["paints_per_s"], "/s")
    table.add(f"scale: full refresh (poll all, diff, paint) p95 / a minimal app's DataTable repaint of as many "
              f"changed cells ({cells})", results["refresh_p95"] / max(p95_ms(base), 0.001), "x", REFRESH_TARGET)
    table.add(f"scale: full refresh (poll all, diff, paint) p95 of {refreshes}", results["refresh_p95"], "ms")
    table.add(f"scale: minimal app's DataTable repaint of {cells} changed cells, p95 of {refreshes}", p95_ms(base),
              "ms")
    table.add("scale: full refresh median", results["refresh_median"], "ms")
    table.add("scale: full refreshes not settled within 10 s", results["unsettled"], "", 0)
    table.add("scale: RSS", results["rss"], "MiB", 200)
    table.add("scale: peak RSS (VmHWM)", results["hwm"], "MiB")
    polls = max(results["polls"], 1)
    table.add("scale: rows added per host poll (steady state)", results["add_row"] / polls, "rows", 0)
    table.add("scale: rows removed per host poll (steady state)", results["remove_row"] / polls, "rows", 0)
    table.add("scale: tables cleared per host poll", results["clear"] / polls, "", 0)
    table.add("scale: tables re-sorted per host poll", results["sort"] / polls, "")
    table.add("scale: cells written per host poll (changed values)", results["cell written"] / polls, "cells")
    table.add("scale: cells rendered per host poll (changed and in view)", results["cell rendered"] / polls, "cells")
    table.add("scale: cells in the tables", results["cells"], "cells")
    table.add("scale: redundant cell writes (value unchanged)", results["redundant"], "cells", 0)
    table.add(f"scale: connected host's lease taken, to held in Leases, worst of {changes}", results["taken"], "s",
              POLL + 0.5)
    table.add(f"scale: connected host's lease released, to free in Leases, worst of {changes}", results["released"],
              "s", POLL + 0.5)
    table.add(f"scale: lease taken by a host not connected (another process), to held in Leases, worst of {changes}"
              f" (slow interval {LEASE_SLOW:g} s)", results["other_taken"], "s", LEASE_SLOW + POLL)
    table.add(f"scale: lease released by a host not connected, to free in Leases, worst of {changes}",
              results["other_released"], "s", LEASE_SLOW + POLL)
    from virttui.locks.readers import DEFAULT_FULL_INTERVAL

    reads = _lease_reads(spec, window)
    one = reads[1][0]
    rotation = math.ceil(files * LEASE_SLOW / DEFAULT_FULL_INTERVAL)
    for count, (steady, changed, again) in sorted(reads.items()):
        hosts = f"{count} embedded host{'s' if count > 1 else ''}"
        target = round(1.2 * one, 2) if count > 1 else None
        table.add(f"scale: lease reads per second, {hosts}, steady (slow interval {LEASE_SLOW:g} s, {files} files)",
                  steady, "/s", target)
        table.add(f"scale: lease reads by the pass after each of {hosts} stopped a guest and started another "
                  f"({rotation} a pass re-reads anyway, and the lockspace)", changed, "reads")
        table.add(f"scale: lease reads by the pass after that ({rotation} and the lockspace, and the files written "
                  f"within 2 s of their first read)", again, "reads")
    poll, passing, bare = _lease_poll_cost(spec, 3 if quick else 5)
    table.add(f"scale: one embedded host's poll, shared {files}-file lease dir, between passes", poll, "ms")
    table.add(f"scale: one embedded host's poll that passes over the {files} files (its reader, each slow interval)",
              passing, "ms")
    table.add("scale: one embedded host's poll, no lease dir", bare, "ms")


def _lease_poll_cost(spec: FleetSpec, repeat: int) -> tuple[float, float, float]:
    """Median ms of one embedded host's poll on the shared lease directory (every host connected,
    every running guest's lease taken): between passes, when it passes over the (unchanged) files,
    and without a lease directory."""
    from bench.stats import timed

    results = []
    for leases in (True, False):
        with fleet_files(spec, leases=leases) as uris:
            drivers = open_drivers(uris)
            try:
                for driver in drivers:
                    driver.connect()
                    driver.poll()
                results.append(median_ms(timed(drivers[0].poll, repeat)))
                store = drivers[0].lease_manager()
                if store is not None:
                    store.slow_interval = 0.0  # every poll is due
                    results.append(median_ms(timed(drivers[0].poll, repeat)))
            finally:
                for driver in drivers:
                    driver.close()
    return results[0], results[1], results[2]


def _poll_round(drivers: list) -> None:
    for driver in drivers:
        driver.poll()


def _reads_over(drivers: list, seconds: float) -> float:
    """Leader records read per second from the shared directory while `drivers` poll every POLL s."""
    cache = drivers[0].lease_manager().cache
    before = cache.reads
    rounds = max(1, math.ceil(seconds / POLL))
    started = time.monotonic()
    for index in range(rounds):
        time.sleep(max(0.0, started + index * POLL - time.monotonic()))
        _poll_round(drivers)
    return (cache.reads - before) / (rounds * POLL)


def _flip_guest(driver: Any) -> None:
    """One guest stopped (its leases released) and another started (leases taken)."""
    from virttui.drivers.base import Action
    from virttui.drivers.model import DomainState

    domains = driver.poll().domains
    running = next(d for d in domains if d.state is DomainState.RUNNING and d.disks)
    stopped = next(d for d in domains if d.state is DomainState.SHUT_OFF and d.disks)
    driver.perform(running.uuid, Action.DESTROY)
    driver.perform(stopped.uuid, Action.START)


def _first_pass_reads(drivers: list) -> int:
    """Leader records read from the change just made until the end of the next pass over the files."""
    cache = drivers[0].lease_manager().cache
    before, last = cache.reads, cache.last_pass
    for _ in range(10):
        time.sleep(POLL)
        _poll_round(drivers)
        if cache.last_pass != last:
            break
    return cache.reads - before


def _lease_reads(spec: FleetSpec, window: float) -> dict[int, tuple[float, int, int]]:
    """What the lease views cost the shared directory, by embedded hosts connected: leader records
    read per second in steady state, by the first pass after every host changed four leases, and by
    the pass after that (a file read within RACY_SECONDS of its write is read once more)."""
    from virttui.locks.agent import RACY_SECONDS

    out = {}
    with fleet_files(spec) as uris:
        for count in sorted({1, 2, spec.hosts}):
            drivers = open_drivers(uris[:count])
            try:
                for driver in drivers:
                    driver.lease_slow_interval = LEASE_SLOW
                    driver.connect()
                time.sleep(RACY_SECONDS)  # files a cluster has were written long before its console reads them
                _poll_round(drivers)  # the first pass reads every file
                time.sleep(POLL)
                steady = _reads_over(drivers, window)
                for driver in drivers:
                    _flip_guest(driver)
                changed = _first_pass_reads(drivers)
                out[count] = (steady, changed, _first_pass_reads(drivers))
            finally:
                for driver in drivers:
                    driver.close()
    return out


async def _scale(uris: list[str], window: float, refreshes: int, changes: int
                 ) -> tuple[dict[str, float], tuple[list[str], list[list[str]]]]:
    from virttui.console.app import VirtTUI
    from virttui.drivers.uri import parse_uri
    from virttui.widgets.difftable import DiffTable
    from virttui.widgets.panes import DomainsTable

    app = VirtTUI(open_drivers(uris), poll_interval=POLL, autopoll=True)
    async with app.run_test(size=SIZE):
        probe = Probe(app)
        await warm_up(app, probe)
        probe.watch_tables()
        out: dict[str, float] = {}
        out["connected"] = sum(1 for host in app.fleet.hosts() if host.state.value == "connected")

        # (a) idle: the default timers only; CPU of every thread of this process over wall time
        polls0, paints0 = probe.polls_handled, probe.paints
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        await asyncio.sleep(window)
        cpu1, wall1 = cpu_seconds(), time.perf_counter()
        polls = probe.polls_handled - polls0
        out["cpu"] = (cpu1 - cpu0) / (wall1 - wall0) * 100
        out["polls_per_s"] = polls / (wall1 - wall0)
        out["paints_per_s"] = (probe.paints - paints0) / (wall1 - wall0)
        out["polls"] = polls
        ops: Counter[str] = Counter()
        for (_name, method), count in probe.ops.items():
            ops[method] += count
        for method in (*TABLE_METHODS, "cell written", "cell rendered"):
            out[method] = ops[method]
        out["redundant"] = probe.redundant_writes
        out["cells"] = sum(t.row_count * len(t.columns) for t in app.screen.query(DiffTable))

        # (b) full refresh: poll every host now, until each result is handled and the frame painted
        samples = []
        probe.unsettled = 0
        written = sum(count for (_name, method), count in probe.ops.items() if method == "cell written")
        for _ in range(refreshes):
            targets = {uri: app.scheduler.next_seq(uri) for uri in app.fleet.uris}
            started = time.perf_counter()
            app.scheduler.poll_all()
            ended = await probe.painted_when(all_polled(probe, targets))
            samples.append(ended - started)
            await asyncio.sleep(0.2)
        out["refresh_p95"] = p95_ms(samples)
        written = sum(count for (_name, method), count in probe.ops.items() if method == "cell written") - written
        out["refresh_cells"] = written / refreshes
        contents = domain_rows(app.screen.query_one(DomainsTable))
        out["unsettled"] = probe.unsettled
        out["refresh_median"] = median_ms(samples)
        out["rss"], out["hwm"] = rss_mib()

        # (c) lease changes, until the Leases status shows them: by a connected host (no pass needed),
        # then by one that is not (another process's lock: seen at a pass, every LEASE_SLOW here)
        out["taken"], out["released"] = await _connected_changes(app, probe, changes)
        for uri in app.fleet.uris:
            app.scheduler.driver(uri).lease_manager().slow_interval = LEASE_SLOW
        lease_dir = parse_uri(uris[0]).param("lease_dir")
        out["other_taken"], out["other_released"] = await _outside_changes(app, probe, lease_dir, changes)
    return out, contents


def _shut_off_disks(app: VirtTUI, uri: str) -> Iterator[tuple[str, str]]:
    """(uuid, first disk) of each shut-off guest of a host whose lease nobody holds."""
    from virttui.drivers.model import DomainState
    from virttui.locks.model import LeaseState

    snap = app.fleet.snapshot(uri)
    for dom in snap.domains if snap is not None else ():
        if dom.state is DomainState.SHUT_OFF and dom.disks:
            status = app.fleet.lease_status_for(dom.disks[0].source, uri)
            if status is not None and status.state is not LeaseState.HELD:
                yield dom.uuid, dom.disks[0].source


def _held(app: VirtTUI, uri: str, path: str) -> Callable[[], bool]:
    from virttui.locks.model import LeaseState

    def held() -> bool:
        status = app.fleet.lease_status_for(path, uri)
        return status is not None and status.state is LeaseState.HELD

    return held


async def _connected_changes(app: VirtTUI, probe: Probe, count: int) -> tuple[float, float]:
    """Worst seconds from a connected host starting (stopping) a guest, through its driver, to its
    lease shown held (free) on screen: no poll is asked for, the next one brings it."""
    from virttui.drivers.base import Action

    taken: list[float] = []
    released: list[float] = []
    uris = app.fleet.uris
    for index in range(count):
        uri = uris[index * 7 % len(uris)]
        uuid, path = next(_shut_off_disks(app, uri))
        driver = app.scheduler.driver(uri)
        held = _held(app, uri, path)
        started = time.perf_counter()
        driver.perform(uuid, Action.START)
        taken.append(await probe.painted_when(held, timeout=30) - started)
        started = time.perf_counter()
        driver.perform(uuid, Action.DESTROY)
        released.append(await probe.painted_when(negated(held), timeout=30) - started)
    return max(taken), max(released)


OUTSIDE_HOST = """
import sys
from virttui.locks.embedded import EmbeddedLeaseStore

store = EmbeddedLeaseStore(sys.argv[1], int(sys.argv[2]))
for line in sys.stdin:  # "take PATH" or "free PATH"; "done" after each
    command, _, disk = line.rstrip("\\n").partition(" ")
    store.acquire(disk) if command == "take" else store.release(disk)
    print("done", flush=True)
"""


async def _outside_changes(app: VirtTUI, probe: Probe, lease_dir: str, count: int) -> tuple[float, float]:
    """Worst seconds from a host that is not connected (a process of its own, so its lock is another
    process's) taking (releasing) a lease to it shown held (free): within a pass and a poll."""
    uris = app.fleet.uris
    host = subprocess.Popen([sys.executable, "-c", OUTSIDE_HOST, lease_dir, str(len(uris) + 1)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert host.stdin is not None and host.stdout is not None
    taken: list[float] = []
    released: list[float] = []
    try:
        for index in range(count):
            uri = uris[(index * 7 + 3) % len(uris)]
            _uuid, path = next(_shut_off_disks(app, uri))
            held = _held(app, uri, path)
            for command, done, samples in (("take", held, taken), ("free", negated(held), released)):
                host.stdin.write(f"{command} {path}\n")
                host.stdin.flush()
                if host.stdout.readline().strip() != "done":
                    raise RuntimeError("the outside host's process stopped")
                started = time.perf_counter()
                samples.append(await probe.painted_when(done, timeout=30) - started)
    finally:
        host.stdin.close()
        host.wait(timeout=30)
    return max(taken), max(released)



def main() -> int:
    """`python -m bench.scale [--quick]`: the scale, keys and start benchmarks alone."""
    from bench.keys import bench_keys
    from bench.start import bench_start

    quick = "--quick" in sys.argv[1:]
    table = Table()
    for bench in (bench_scale, bench_keys, bench_start):
        bench(table, quick=quick)
    print(table.render())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Soak: the console left running under churn, checked for growth.

The real app runs headless over the embedded demo plus (when a real stack is
given) a real libvirt host over SSH, polling at a fast interval, while
lifecycle actions fire continuously on embedded guests, a real guest is
started and destroyed from outside (events), and one extra host flaps: its
node file disappears and comes back. After a warm-up, RSS may grow by at most
10 %, threads and file descriptors not at all, and no worker may die of an
unhandled error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field

from bench.stats import Table, rss_kib


@dataclass
class SoakResult:
    seconds: float
    actions: int = 0
    events: int = 0
    flaps: int = 0
    rss_start_kib: int = 0
    rss_end_kib: int = 0
    threads_start: int = 0
    threads_end: int = 0
    fds_start: int = 0
    fds_end: int = 0
    worker_errors: list[str] = field(default_factory=list)
    notifications: int = 0

    # Counts are taken when nothing is in flight (quiet_floor): during churn a poll's pipes and
    # lease files come and go by the dozen, and a leak shows as a higher floor, not a higher peak.
    @property
    def fd_growth(self) -> int:
        return self.fds_end - self.fds_start

    @property
    def thread_growth(self) -> int:
        return self.threads_end - self.threads_start

    @property
    def rss_growth(self) -> float:
        return (self.rss_end_kib - self.rss_start_kib) / max(self.rss_start_kib, 1)


def _fds(exclude: str = "") -> int:
    """Open descriptors, less those under `exclude`: embedded guests hold one locked fd per running
    disk, so those follow how many guests the churn left running, not a leak."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if not (exclude and target.startswith(exclude)):
            count += 1
    return count


def run_soak(seconds: float, *, real_host=None, warmup: float = 5.0, seed: int = 7) -> SoakResult:  # noqa: ANN001
    """Run the console under churn for `seconds` after `warmup`; real_host is a harness TestHost or None."""
    from virttui.actiontable import spec
    from virttui.assets import asset
    from virttui.console.app import VirtTUI
    from virttui.demo import Demo
    from virttui.drivers.base import Action, Driver, valid_actions
    from virttui.drivers.registry import open_driver

    rng = random.Random(seed)
    scratch = tempfile.mkdtemp(prefix="virttui-soak-")
    flappy_node = os.path.join(scratch, "flappy.xml")
    shutil.copy(asset("demo", "hv3.xml"), flappy_node)
    os.makedirs(os.path.join(scratch, "leases"))
    demo = Demo(lease_dir=os.path.join(scratch, "leases"))
    drivers: list[Driver] = list(demo.drivers)
    flappy = open_driver(f"test://{flappy_node}?lease_dir={os.path.join(scratch, 'leases2')}&host_id=9")
    drivers.append(flappy)
    real_name = ""
    if real_host is not None:
        real_name = f"vttest-soak{rng.randrange(10**6):06d}"
        real_uuid = real_host.define_guest(real_name)
        drivers.append(open_driver(real_host.ssh_uri))
    result = SoakResult(seconds=seconds)
    app = VirtTUI(drivers, poll_interval=0.5, contain_errors=True)
    stop = threading.Event()

    def outside_churn() -> None:
        """Events from outside (real host) and a flapping embedded host, on their own thread."""
        running = False
        while not stop.wait(1.0):
            if real_host is not None:
                real_host.virsh("destroy" if running else "start", real_uuid, check=False)
                running = not running
                result.events += 1
            if os.path.exists(flappy_node):
                os.rename(flappy_node, flappy_node + ".gone")
                flappy.close()  # the next poll reconnects, finds no file: the host goes to error
            else:
                os.rename(flappy_node + ".gone", flappy_node)
            result.flaps += 1

    class Errors(logging.Handler):
        """The app logs every worker that died and every contained exception at ERROR."""

        def emit(self, record: logging.LogRecord) -> None:
            if record.name != "virttui.activity":  # the operator's record of failed actions, not a bug
                result.worker_errors.append(record.getMessage())

    errors = Errors(level=logging.ERROR)
    logging.getLogger("virttui").addHandler(errors)

    async def drive(pilot) -> None:  # noqa: ANN001 - Textual Pilot
        churn = threading.Thread(target=outside_churn, name="soak churn", daemon=True)
        churn.start()
        async def quiet_floor() -> tuple[int, int, int]:
            """Between bursts: lowest fd and thread counts over a second with nothing started."""
            await app.workers.wait_for_complete()
            samples = []
            for _ in range(10):
                await asyncio.sleep(0.1)
                samples.append((_fds(scratch), _threads()))
            return rss_kib(), min(f for f, _ in samples), min(t for _, t in samples)

        started = time.monotonic()
        measuring = False
        while time.monotonic() - started < warmup + seconds:
            if not measuring and time.monotonic() - started >= warmup:
                measuring = True
                result.rss_start_kib, result.fds_start, result.threads_start = await quiet_floor()
            for uri in [d.uri for d in demo.drivers]:
                snap = app.fleet.snapshot(uri)
                if snap is None or not snap.domains:
                    continue
                dom = rng.choice(snap.domains)
                choices = sorted(valid_actions(dom.state) - {Action.REBOOT}, key=lambda a: a.value)
                if choices and (uri, dom.uuid) not in app.actions.pending:
                    app.actions._run(uri, dom.uuid, dom.name, spec(rng.choice(choices)))  # noqa: SLF001
                    result.actions += 1
            await pilot.press(rng.choice(["j", "k", "tab", "o"]))
            await asyncio.sleep(0.2)
        stop.set()
        churn.join(timeout=10)
        result.rss_end_kib, result.fds_end, result.threads_end = await quiet_floor()
        result.notifications = len(list(app._notifications))  # noqa: SLF001
        app.exit()

    try:
        app.run(headless=True, size=(120, 40), auto_pilot=drive)
    finally:
        logging.getLogger("virttui").removeHandler(errors)
        stop.set()
        for path in (flappy_node + ".gone",):
            if os.path.exists(path):
                os.rename(path, flappy_node)
        demo.close()
        if real_host is not None and real_name:
            real_host.undefine_guest(real_name)
        shutil.rmtree(scratch, ignore_errors=True)
    return result


def bench_soak(table: Table, stack, *, quick: bool) -> None:  # noqa: ANN001 - RealStack or None
    seconds = 20.0 if quick else 600.0
    # The first minute fills Textual's and Rich's bounded caches (geometry, styles, segments: some
    # hold 4096 entries); growth is measured from there, over the ten minutes that follow.
    warmup = 5.0 if quick else 60.0
    result = run_soak(seconds, real_host=stack.hosts[0] if stack is not None else None, warmup=warmup)
    table.add(f"soak: {seconds:.0f} s after {warmup:.0f} s warm-up, {result.actions} actions, "
              f"{result.events} outside changes, {result.flaps} flaps — RSS growth after warm-up",
              result.rss_growth * 100, "%", 10)
    table.add("soak: thread growth (quiet floor, end over start)", result.thread_growth, "", 0)
    table.add("soak: file descriptor growth (quiet floor, end over start)", result.fd_growth, "", 0)
    table.add("soak: unhandled worker errors", len(result.worker_errors), "", 0)


def _threads() -> int:
    """Threads alive, but for the idle threads of asyncio's default executor (Textual's thread
    workers run there): it keeps up to min(32, CPUs + 4) of them once a burst of polls and actions
    has needed them, so reaching that bound later in a soak is no leak (CI saw 8 -> 9 once)."""
    return sum(1 for thread in threading.enumerate() if not thread.name.startswith("asyncio_"))

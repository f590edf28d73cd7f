"""The scale, keys and start benchmarks run in their quick form and report every figure (the start one in a
pseudo-terminal, read by a terminal emulator).

A smoke test, not a timed one: it checks the benchmarks still work and produce
finite numbers, never whether a target was met (that depends on the machine).
"""

from __future__ import annotations

import math
import os

import pytest

from bench.keys import bench_keys
from bench.scale import bench_scale
from bench.start import bench_start
from bench.stats import Table

EXPECTED = [
    "scale: fleet",
    "scale: idle CPU at the 2 s refresh",
    "scale: host polls handled per second while idle",
    "scale: full refresh (poll all, diff, paint) p95 / a minimal app's DataTable repaint",
    "scale: full refresh (poll all, diff, paint) p95 of",
    "scale: minimal app's DataTable repaint of",
    "scale: RSS",
    "scale: rows added per host poll",
    "scale: rows removed per host poll",
    "scale: tables cleared per host poll",
    "scale: cells written per host poll",
    "scale: cells rendered per host poll",
    "scale: redundant cell writes",
    "scale: first domains on screen (process start)",
    "scale: connected host's lease taken, to held in Leases",
    "scale: connected host's lease released, to free in Leases",
    "scale: lease taken by a host not connected (another process), to held in Leases",
    "scale: lease released by a host not connected, to free in Leases",
    "scale: lease reads per second, 1 embedded host, steady",
    "scale: lease reads per second, 2 embedded hosts, steady",
    "scale: lease reads by the pass after each of 1 embedded host stopped",
    "scale: one embedded host's poll, shared",
    "scale: one embedded host's poll that passes over",
    "keys: cursor move (j/down) in Domains, settled, p95 / minimal app's",
    "keys: filter keystroke (after /), settled, p95 / minimal app's",
    "keys: clear the filter (Esc), settled, p95 / minimal app's",
    "keys: pane switch (Tab), settled, p95 / minimal app's",
    "keys: pane switch (Tab), minimal app, p95",
    "start in a terminal: minimal Textual DataTable app",
    "start in a terminal: virttui --demo to its first guest on screen",
    "start in a terminal: virttui --demo / minimal app",
    "start: paramiko imported with only test:// hosts",
]


def test_scale_keys_and_start_benchmarks_report_finite_figures():
    table = Table()
    bench_scale(table, quick=True)
    bench_keys(table, quick=True)
    bench_start(table, quick=True)
    figures = {figure: shown for figure, shown, _target, _verdict in table.rows}
    for prefix in EXPECTED:
        matches = [figure for figure in figures if figure.startswith(prefix)]
        assert matches, f"no figure starting with {prefix!r} in {sorted(figures)}"
    for figure, shown in figures.items():
        value = float(shown.split()[0])
        assert math.isfinite(value), f"{figure}: {shown}"
    assert table.render().count("\n") == len(table.rows) + 1


@pytest.mark.realstack
def test_real_stack_benchmarks_run_in_quick_form():
    """`python -m bench --quick` for the real-stack figures: they must run and print, not meet targets."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "poll", "--only", "peer",
                          "--only", "leases", "--only", "start"], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    figures = ["virttui poll, local / bare virsh", "virttui poll, ssh / bare virsh", "peer: launch to populated list",
               "peer: outside virsh change to on screen", "cleanup time / virt-sanlock-cleanup", "lease status",
               "start in a terminal: virttui -c a local host / minimal app",
               "start in a terminal: virttui -c an SSH host, its SSH connect (measured apart)",
               "start in a terminal: virttui -c an SSH host less its connect / minimal app"]
    runs = os.stat("/var/tmp").st_dev  # where the harness keeps its lease directory
    if os.path.exists(f"/sys/dev/block/{os.major(runs)}:{os.minor(runs)}/stat"):  # a block device's busy time
        figures.append("disk busy during virttui's cleanup / virt-sanlock-cleanup's time")
    for figure in figures:
        assert figure in out.stdout, out.stdout

"""A poll of a real libvirt host against bare virsh, locally and over SSH on loopback.

Baseline, measured in the same run on the same host: the two virsh processes
an operator would run by hand for the same facts, `virsh domstats --raw` and
`virsh list --all`. virttui's poll is one virsh process running a command
script (see virttui/drivers/virsh.py), which is why it can beat the baseline.
Over SSH the poll runs in a persistent remote shell: no new channel per poll.
"""

from __future__ import annotations

import subprocess

from bench.stats import Table, median_ms, timed
from virttui.drivers.registry import open_driver


def bench_poll(table: Table, stack, *, quick: bool) -> None:  # noqa: ANN001 - tests/realstack RealStack
    host = stack.hosts[0]
    defined, running = (10, 2) if quick else (40, 4)
    repeat = 5 if quick else 30
    names = [f"vttest-bench{i:02d}" for i in range(defined)]
    for index, name in enumerate(names):
        host.define_guest(name, start=index < running)
    try:
        def bare() -> None:
            for args in (["domstats", "--raw"], ["list", "--all"]):
                subprocess.run(["virsh", "-c", host.local_uri, *args], check=True, capture_output=True)

        base = median_ms(timed(bare, repeat))
        table.add(f"bare virsh domstats + list --all ({defined} defined, {running} running)", base, "ms")
        for label, uri, target in (("local", host.local_uri, 1.3), ("ssh", host.ssh_uri, 1.5)):
            driver = open_driver(uri)
            driver.connect()
            try:
                snap = driver.poll()
                assert len([d for d in snap.domains if d.name in names]) == defined
                poll = median_ms(timed(driver.poll, repeat))
            finally:
                driver.close()
            table.add(f"virttui poll, {label}", poll, "ms")
            table.add(f"virttui poll, {label} / bare virsh", poll / base, "x", target)
    finally:
        for name in names:
            host.undefine_guest(name)

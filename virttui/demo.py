"""The embedded demo: three test hosts sharing one lease directory.

What it shows on purpose: hv2's web-standby uses web-01's disk, so starting
it while web-01 runs on hv1 is a lease conflict; two stale lease files whose
disks no domain has any more are there for the cleanup action.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable

from virttui.assets import asset
from virttui.drivers.testdriver import TestDriver
from virttui.locks.embedded import write_free_lease

DEMO_HOSTS = ("hv1", "hv2", "hv3")
STALE_DISKS = (
    "/var/lib/libvirt/images/old-build.qcow2",
    "/var/lib/libvirt/images/retired-vm.qcow2",
)


class Demo:
    """Owns the demo's private lease directory; close() removes it."""

    def __init__(self, lease_dir: str | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._owned = lease_dir is None
        self.lease_dir = lease_dir or tempfile.mkdtemp(prefix="virttui-demo-leases-")
        self.clock = clock
        for number, disk in enumerate(STALE_DISKS, start=1):
            write_free_lease(self.lease_dir, disk, last_owner=number)
        self.drivers = [
            TestDriver(
                f"test://{asset('demo', name + '.xml')}",
                str(asset("demo", name + ".xml")),
                lease_dir=self.lease_dir,
                clock=clock,
            )
            for name in DEMO_HOSTS
        ]

    def close(self) -> None:
        for driver in self.drivers:
            driver.close()
        if self._owned:
            shutil.rmtree(self.lease_dir, ignore_errors=True)

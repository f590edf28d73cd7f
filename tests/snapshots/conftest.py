"""Snapshot tests: the demo on a lease directory whose path is fixed, as it shows in the cleanup dialog."""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.clock import SteppedClock

from virttui.demo import Demo

SNAPSHOT_LEASE_DIR = "/tmp/virttui-snapshot-leases"  # fixed: it is shown in the cleanup dialog


@pytest.fixture
def snapshot_demo(clock: SteppedClock) -> Iterator[Demo]:
    # The path shows in the cleanup preview, so it is fixed; two test runs on one machine take
    # turns with it (each empties it first), rather than deleting each other's lease files.
    with open(f"{SNAPSHOT_LEASE_DIR}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(SNAPSHOT_LEASE_DIR, ignore_errors=True)
        Path(SNAPSHOT_LEASE_DIR).mkdir(parents=True)
        instance = Demo(lease_dir=SNAPSHOT_LEASE_DIR, clock=clock)
        yield instance
        instance.close()
        shutil.rmtree(SNAPSHOT_LEASE_DIR, ignore_errors=True)

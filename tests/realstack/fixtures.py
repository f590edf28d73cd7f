"""pytest plugin: the session-wide real stacks (two private libvirt test hosts each).

Loaded from tests/conftest.py via ``pytest_plugins = ["realstack.fixtures"]``.

* ``realstack``: two hosts without sanlock (starts in well under a second).
* ``sanlock_stack``: two more hosts with a sanlock daemon each, libvirt's sanlock lock plugin
  with automatic disk leases and one shared lease directory (starts in ~3.5 s).
* ``throttled_lease_stack`` (module scope): like ``sanlock_stack``, but the lease directory is on
  its own loop device holding FLEET_LEASES free lease files, and the hosts' reads of it are capped
  at LEASE_READ_IOPS (one blkio cgroup), like a busy NFS export shared by a fleet.
* ``bastions`` (module scope): two jump hosts (sshd only, TCP forwarding on, each forwarded
  connection in its log) started on ``realstack`` for the module's tests, stopped after them.

Both can be alive in one session: they are independent runs (own namespaces, run directories and
lease directory).  A test that uses either gets the ``realstack`` marker.  If a stack cannot
start, the tests using it error out with the component and the tail of its log: they never skip.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from types import FrameType

import pytest

from realstack.harness import Bastion, LeaseDisk, RealStack


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


_replaced: dict[int, object] = {}


def pytest_configure(config: pytest.Config) -> None:
    """A CI timeout's SIGTERM or a dropped terminal's SIGHUP ends the run like Ctrl+C, so the
    stacks' teardown runs; by default either signal killed pytest and left every daemon up. A
    signal the caller set otherwise (`nohup` ignores SIGHUP) is left as it is."""
    for number in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(number) is signal.SIG_DFL:
            _replaced[number] = signal.signal(number, _interrupt)


def pytest_unconfigure(config: pytest.Config) -> None:
    while _replaced:
        number, previous = _replaced.popitem()
        signal.signal(number, previous)


@pytest.fixture(scope="session")
def realstack() -> Iterator[RealStack]:
    stack = RealStack.start(2)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def sanlock_stack() -> Iterator[RealStack]:
    stack = RealStack.start(2, sanlock=True)
    try:
        yield stack
    finally:
        stack.stop()


FLEET_LEASES = 2000  # free lease files in the throttled stack's directory: a fleet's worth
LEASE_READ_IOPS = 300  # the hosts' reads of it per second: what a busy export gives one client


@pytest.fixture(scope="module")
def throttled_lease_stack() -> Iterator[RealStack]:
    """Two sanlock hosts whose shared lease directory (FLEET_LEASES free leases) is on a loop device
    whose reads are capped at LEASE_READ_IOPS for every process of the hosts."""
    from virttui.locks.embedded import write_free_lease  # here: the plugin loads with every session

    stack = RealStack.start(2, sanlock=True, lease_disk=LeaseDisk())
    try:
        assert stack.lease_dir is not None
        for index in range(FLEET_LEASES):
            write_free_lease(str(stack.lease_dir), f"/var/lib/libvirt/images/fleet-{index:04d}.qcow2")
        os.sync()  # written back before the cap: the measurements see reads only, no flush of these
        stack.set_lease_read_iops(LEASE_READ_IOPS)
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def bastions(realstack: RealStack) -> Iterator[tuple[Bastion, Bastion]]:
    """Two jump hosts on the session's stack (~0.1 s each), for a one-hop and a two-hop chain."""
    started: list[Bastion] = []
    try:
        started.append(realstack.start_bastion("vtbastion1"))
        started.append(realstack.start_bastion("vtbastion2"))
        yield started[0], started[1]
    finally:
        for bastion in reversed(started):
            realstack.stop_bastion(bastion)


@contextlib.contextmanager
def ssh_client_chosen(client: str) -> Iterator[str]:
    """+ssh URIs opened meanwhile use this SSH client ("paramiko" or "openssh"); the default after."""
    from virttui.drivers.sshclients import choose_ssh_clients

    choose_ssh_clients(client)
    try:
        yield client
    finally:
        choose_ssh_clients()


@pytest.fixture(params=["paramiko", "openssh"])
def ssh_client(request: pytest.FixtureRequest) -> Iterator[str]:
    """The test once per SSH client of +ssh URIs: paramiko, and the system ssh over a private ControlMaster."""
    with ssh_client_chosen(request.param) as client:
        yield client


STACK_FIXTURES = ("realstack", "sanlock_stack", "throttled_lease_stack")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in STACK_FIXTURES):
            item.add_marker(pytest.mark.realstack)

"""Operator essentials on the embedded driver: autostart, undefine, snapshots, memory stats period."""

from __future__ import annotations

import pytest

from virttui.drivers.base import Action
from virttui.drivers.errors import DomainNotFound, NotSupported, OperationInvalid
from virttui.drivers.model import DomainState


def find(driver, name):  # noqa: ANN001, ANN201
    return next(d for d in driver.poll().domains if d.name == name)


@pytest.fixture
def hv1(demo):
    driver = demo.drivers[0]
    driver.connect()
    return driver


def test_autostart_toggle(hv1):
    dom = find(hv1, "mail")
    hv1.set_autostart(dom.uuid, not dom.autostart)
    assert find(hv1, "mail").autostart is (not dom.autostart)


def test_undefine_a_stopped_domain_removes_it_and_a_running_one_goes_when_stopped(hv1):
    stopped = find(hv1, "build-runner")
    hv1.undefine(stopped.uuid)
    assert "build-runner" not in {d.name for d in hv1.poll().domains}
    running = find(hv1, "web-02")
    hv1.undefine(running.uuid)
    assert find(hv1, "web-02").persistent is False
    with pytest.raises(OperationInvalid):
        hv1.undefine(running.uuid)
    hv1.perform(running.uuid, Action.DESTROY)
    assert "web-02" not in {d.name for d in hv1.poll().domains}


def test_an_undefined_running_domain_goes_when_its_graceful_shutdown_ends(hv1, clock):
    running = find(hv1, "web-02")
    hv1.undefine(running.uuid)
    hv1.perform(running.uuid, Action.SHUTDOWN)
    clock.advance(30)
    assert "web-02" not in {d.name for d in hv1.poll().domains}


def test_snapshots_revert_restores_the_state(hv1):
    dom = find(hv1, "web-01")
    hv1.create_snapshot(dom.uuid, "running", "before the change")
    hv1.perform(dom.uuid, Action.DESTROY)
    hv1.create_snapshot(dom.uuid, "stopped")
    snaps = {s.name: s for s in hv1.snapshots(dom.uuid)}
    assert snaps["running"].state == "running" and snaps["stopped"].current
    assert snaps["stopped"].parent == "running" and snaps["running"].description == "before the change"
    hv1.revert_snapshot(dom.uuid, "running")
    assert find(hv1, "web-01").state is DomainState.RUNNING
    hv1.delete_snapshot(dom.uuid, "stopped")
    assert [s.name for s in hv1.snapshots(dom.uuid)] == ["running"]
    with pytest.raises(DomainNotFound):
        hv1.revert_snapshot(dom.uuid, "nope")
    with pytest.raises(OperationInvalid):
        hv1.create_snapshot(dom.uuid, "running")


@pytest.mark.parametrize("now", ["stopped", "running", "paused"])
def test_revert_to_a_paused_snapshot_leaves_the_guest_paused(hv1, now):
    dom = find(hv1, "web-01")
    hv1.perform(dom.uuid, Action.SUSPEND)
    hv1.create_snapshot(dom.uuid, "paused")
    hv1.perform(dom.uuid, Action.RESUME)
    hv1.create_snapshot(dom.uuid, "running")
    if now == "stopped":
        hv1.perform(dom.uuid, Action.DESTROY)
    elif now == "paused":
        hv1.perform(dom.uuid, Action.SUSPEND)
    hv1.revert_snapshot(dom.uuid, "paused")
    assert find(hv1, "web-01").state is DomainState.PAUSED
    hv1.revert_snapshot(dom.uuid, "running")
    assert find(hv1, "web-01").state is DomainState.RUNNING


def test_memory_stats_period_needs_a_running_domain(hv1):
    with pytest.raises(OperationInvalid):
        hv1.set_memory_stats_period(find(hv1, "build-runner").uuid, 5)
    hv1.set_memory_stats_period(find(hv1, "mail").uuid, 5)


def test_no_serial_console_on_an_embedded_host(hv1):
    with pytest.raises(NotSupported):
        hv1.attach_console(find(hv1, "mail").uuid)

"""The embedded hypervisor: states, transitions, counters, errors like libvirt's."""

import pytest
from support.paths import DEMO_NODE

from virttui.drivers.base import Action, valid_actions
from virttui.drivers.errors import ConnectionFailed, DomainNotFound, LeaseConflict, OperationInvalid
from virttui.drivers.model import DomainState
from virttui.drivers.registry import open_driver
from virttui.drivers.testdriver import SHUTDOWN_SECONDS, TestDriver


@pytest.fixture
def hv1(lease_dir, clock):
    driver = TestDriver("test:///hv1", str(DEMO_NODE), lease_dir=str(lease_dir), clock=clock)
    driver.connect()
    yield driver
    driver.close()


def by_name(driver, name):
    return next(d for d in driver.poll().domains if d.name == name)


def test_snapshot_has_host_facts_and_initial_states(hv1):
    snap = hv1.poll()
    assert snap.host.hostname == "hv1" and snap.host.cpus == 32
    assert by_name(hv1, "win-test").state is DomainState.PAUSED
    assert by_name(hv1, "monitor").state is DomainState.IDLE
    assert by_name(hv1, "build-runner").state is DomainState.SHUT_OFF
    assert by_name(hv1, "web-01").id == 1


def test_start_then_graceful_shutdown_passes_through_in_shutdown(hv1, clock):
    uuid = by_name(hv1, "build-runner").uuid
    hv1.start(uuid)
    assert by_name(hv1, "build-runner").state is DomainState.RUNNING
    hv1.shutdown(uuid)
    assert by_name(hv1, "build-runner").state is DomainState.IN_SHUTDOWN
    clock.advance(SHUTDOWN_SECONDS - 0.5)
    assert by_name(hv1, "build-runner").state is DomainState.IN_SHUTDOWN
    clock.advance(1)
    dom = by_name(hv1, "build-runner")
    assert dom.state is DomainState.SHUT_OFF and dom.id is None


def test_pause_resume_reboot_destroy(hv1):
    uuid = by_name(hv1, "web-01").uuid
    hv1.suspend(uuid)
    assert by_name(hv1, "web-01").state is DomainState.PAUSED
    hv1.resume(uuid)
    assert by_name(hv1, "web-01").state is DomainState.RUNNING
    hv1.reboot(uuid)
    assert by_name(hv1, "web-01").state is DomainState.RUNNING
    hv1.destroy(uuid)
    assert by_name(hv1, "web-01").state is DomainState.SHUT_OFF


@pytest.mark.parametrize("name, action, message", [
    ("web-01", Action.START, "domain is already running"),
    ("build-runner", Action.SHUTDOWN, "domain is not running"),
    ("build-runner", Action.DESTROY, "domain is not running"),
    ("build-runner", Action.SUSPEND, "domain is not running"),
    ("web-01", Action.RESUME, "domain is not paused"),
    ("win-test", Action.SUSPEND, "domain is already paused"),
])
def test_invalid_transitions_raise_like_libvirt(hv1, name, action, message):
    with pytest.raises(OperationInvalid, match=message):
        hv1.perform(by_name(hv1, name).uuid, action)


def test_counters_advance_only_while_running(hv1, clock):
    before = {d.name: d for d in hv1.poll().domains}
    clock.advance(10)
    after = {d.name: d for d in hv1.poll().domains}
    assert after["web-01"].cpu_time_ns > before["web-01"].cpu_time_ns
    assert after["web-01"].total_io.rd_bytes > before["web-01"].total_io.rd_bytes
    assert after["build-runner"].cpu_time_ns == before["build-runner"].cpu_time_ns
    assert after["win-test"].cpu_time_ns == before["win-test"].cpu_time_ns  # paused


def test_domain_xml_and_unknown_uuid(hv1):
    dom = by_name(hv1, "web-01")
    xml = hv1.domain_xml(dom.uuid)
    assert "<name>web-01</name>" in xml and "id=\"1\"" in xml
    assert "runstate" not in xml
    with pytest.raises(DomainNotFound):
        hv1.domain_xml("00000000-0000-0000-0000-000000000000")


def test_valid_actions_match_driver_behaviour(hv1):
    for dom in hv1.poll().domains:
        for action in Action:
            if action in valid_actions(dom.state):
                continue
            with pytest.raises(OperationInvalid):
                hv1.perform(dom.uuid, action)


def test_default_uri_is_the_bundled_demo_node(lease_dir):
    driver = open_driver(f"test:///default?lease_dir={lease_dir}")
    driver.connect()
    try:
        assert driver.poll().host.hostname == "hv1"
    finally:
        driver.close()


def test_unreadable_lease_directory_is_a_connection_error_naming_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    driver = TestDriver("test:///x", str(DEMO_NODE), lease_dir=str(blocker / "leases"))
    with pytest.raises(ConnectionFailed, match="leases"):
        driver.connect()


def test_two_hosts_on_one_lease_directory_exclude_each_other(demo):
    hv1, hv2, _ = demo.drivers
    for driver in demo.drivers:
        driver.connect()
    standby = by_name(hv2, "web-standby")  # same disk as hv1's running web-01
    with pytest.raises(LeaseConflict, match="web-01.qcow2"):
        hv2.start(standby.uuid)
    assert by_name(hv2, "web-standby").state is DomainState.SHUT_OFF
    hv1.destroy(by_name(hv1, "web-01").uuid)
    hv2.start(standby.uuid)  # the lease is free now
    assert by_name(hv2, "web-standby").state is DomainState.RUNNING
    with pytest.raises(LeaseConflict):
        hv1.start(by_name(hv1, "web-01").uuid)


def test_startup_warnings_are_not_repeated_after_a_reconnect(lease_dir, clock):
    first = TestDriver("test:///a", str(DEMO_NODE), lease_dir=str(lease_dir), clock=clock)
    second = TestDriver("test:///b", str(DEMO_NODE), lease_dir=str(lease_dir), clock=clock, host_id=2)
    first.connect()  # holds every running guest's leases: the same node on a second host can't start them
    try:
        second.connect()
        warned = second.poll().host.warnings
        assert warned and all("left shut off" in w for w in warned)
        second.close()
        second.connect()
        assert second.poll().host.warnings == warned
    finally:
        second.close()
        first.close()

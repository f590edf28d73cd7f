"""Hints that name the way out, waking a pmsuspended guest, the serial console only where a host has one,
and lease status that follows the states the Fleet knows (confirmed by an action, before its poll)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from support.paths import DEMO_NODE

from virttui import actiontable as registry
from virttui.demo import Demo
from virttui.drivers.errors import DomainNotFound, LeaseConflict, NotSupported, OperationInvalid
from virttui.drivers.model import Domain, DomainState
from virttui.drivers.registry import UnavailableDriver
from virttui.drivers.testdriver import TestDriver
from virttui.drivers.transport import CommandResult, LocalTransport, Transport
from virttui.drivers.uri import parse_uri
from virttui.drivers.virsh import VirshDriver
from virttui.fleet import Fleet
from virttui.locks.model import LeaseState
from virttui.views.hosts import all_row

UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"


def a_domain(state: DomainState, name: str = "guest") -> Domain:
    return Domain(UUID, name, state, 1, 1024, 1024)


def find(driver: TestDriver, name: str) -> Domain:
    return next(dom for dom in driver.poll().domains if dom.name == name)


@pytest.fixture
def hosts(demo: Demo) -> list[TestDriver]:
    for driver in demo.drivers:
        driver.connect()
    return demo.drivers


def polled_fleet(drivers: Sequence[TestDriver]) -> Fleet:
    fleet = Fleet([driver.uri for driver in drivers])
    for driver in drivers:
        fleet.apply(driver.poll())
    return fleet


# -- hints --------------------------------------------------------------------------------------
def test_a_crashed_guest_refused_start_is_told_to_force_it_off_first_which_works(hosts):
    hv2 = hosts[1]
    crashed = find(hv2, "ci-agent")
    assert crashed.state is DomainState.CRASHED
    assert registry.spec("start").refusal(crashed) == "Start: ci-agent is crashed: f (force off) first"
    with pytest.raises(OperationInvalid):  # libvirt starts only an inactive domain
        hv2.start(crashed.uuid)
    hv2.destroy(crashed.uuid)  # the way out the hint names
    hv2.start(crashed.uuid)
    assert find(hv2, "ci-agent").state is DomainState.RUNNING


@pytest.mark.parametrize(("action", "state", "hint"), [
    ("shutdown", DomainState.PAUSED, "Shut down: guest is paused: p (resume) first, or f (force off)"),
    ("reboot", DomainState.SHUT_OFF, "Reboot: guest is shut off: s (start) instead"),
    ("start", DomainState.PMSUSPENDED, "Start: guest is pmsuspended: w (wake) instead"),
    ("console", DomainState.SHUT_OFF, "Console: guest is shut off: s (start) first"),
    ("start", DomainState.RUNNING, "Start: guest is running"),  # nothing to get to: no hint
])
def test_a_refusal_names_the_key_that_gets_there(action, state, hint):
    assert registry.spec(action).choose([a_domain(state)]).refusal(a_domain(state)) == hint


def test_every_way_out_names_bound_keys_and_the_first_can_apply_in_that_state():
    """A hint never names a key that would itself be refused (unless the guest gets there on its own)."""
    bound = {spec.key for spec in registry.keyed()}
    for spec in registry.ACTIONS:
        for state, way in spec.ways_out:
            assert state not in spec.states, (spec.id, state)
            named = re.findall(r"\{(\w+)\}", way)
            assert named and all(registry.key_named(name)[0] in bound for name in named), way
            if not way.startswith("wait"):
                assert registry.spec(named[0]).fits(a_domain(state)), (spec.id, state, way)


# -- waking a pmsuspended guest ------------------------------------------------------------------
def test_wake_is_an_entry_valid_only_when_pmsuspended_on_a_free_key():
    from virttui.console.app import VirtTUI
    from virttui.screens.detail import DomainDetailScreen
    from virttui.screens.main import MainScreen

    wake = registry.spec("pmwakeup")
    assert [state for state in DomainState if wake.fits(a_domain(state))] == [DomainState.PMSUSPENDED]
    assert wake.state_after is DomainState.RUNNING and wake.method == "pm_wakeup" and not wake.show
    assert ("Wake domain", "Wake the selected pmsuspended domain (w)", "pmwakeup") in registry.in_palette("main")
    for bindings in (MainScreen.BINDINGS, DomainDetailScreen.BINDINGS, VirtTUI.BINDINGS):
        actions = {binding.action for binding in bindings if binding.key == wake.key}  # type: ignore[union-attr]
        assert actions <= {"domain('pmwakeup')", "unavailable('pmwakeup')"}


def test_the_embedded_host_wakes_a_pmsuspended_guest(hosts):
    hv3 = hosts[2]
    asleep = find(hv3, "legacy-app")
    assert asleep.state is DomainState.PMSUSPENDED
    with pytest.raises(OperationInvalid):
        hv3.pm_wakeup(find(hv3, "k8s-node-3").uuid)  # running: nothing to wake
    hv3.pm_wakeup(asleep.uuid)
    assert find(hv3, "legacy-app").state is DomainState.RUNNING


class Recorder(Transport):
    """Answers every command with success and keeps the argv."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def run(self, argv, *, timeout=None) -> CommandResult:  # noqa: ANN001
        self.commands.append(list(argv))
        return CommandResult(0, "", "")

    def stream(self, argv):  # noqa: ANN001, ANN201
        raise AssertionError("no stream expected")


def test_virsh_wakes_by_uuid_only():
    transport = Recorder()
    driver = VirshDriver("qemu:///system", parse_uri("qemu:///system"), transport)
    driver.pm_wakeup(UUID)
    assert transport.commands == [["virsh", "-q", "-c", "qemu:///system", f"dompmwakeup {UUID}"]]
    with pytest.raises(DomainNotFound):
        driver.pm_wakeup("x'; touch /tmp/pwned; '")
    assert len(transport.commands) == 1


def test_a_driver_without_wake_says_so():
    with pytest.raises(NotSupported):
        UnavailableDriver("qemu:///nowhere", "bad").pm_wakeup(UUID)


def test_a_hypervisor_that_cannot_wake_is_a_one_line_not_supported():
    """Debian's virsh on libvirt's test driver, which has no virDomainPMWakeup: the operator reads why."""
    assert shutil.which("virsh"), "virsh is not installed (scripts/test.sh installs libvirt-clients)"
    uri = f"test://{DEMO_NODE.parent / 'hv3.xml'}"
    driver = VirshDriver(uri, parse_uri(uri), LocalTransport())
    driver.connect()
    try:
        asleep = next(dom for dom in driver.poll().domains if dom.name == "legacy-app")
        with pytest.raises(NotSupported, match="could not be woken up") as refused:
            driver.pm_wakeup(asleep.uuid)
        assert "\n" not in str(refused.value)
    finally:
        driver.close()


# -- the serial console: only where the host has one ---------------------------------------------
def test_the_console_is_offered_only_on_hosts_that_have_one(hosts):
    console = registry.spec("console")
    assert not console.offered_on(hosts[0])  # an embedded host
    assert not console.offered_on(UnavailableDriver("qemu:///nowhere", "bad"))
    assert console.offered_on(VirshDriver("qemu:///system", parse_uri("qemu:///system"), LocalTransport()))
    assert console.refusal_here("hv1") == "Console: hv1 has no serial console to attach to"
    assert all(spec.offered_on(hosts[0]) for spec in registry.ACTIONS if spec.id != "console")


# -- lease status follows the confirmed states ----------------------------------------------------
WEB_01 = "/var/lib/libvirt/images/web-01.qcow2"


def test_a_guest_shown_forced_off_holds_its_lease_no_longer_at_once(hosts):
    hv1 = hosts[0]
    fleet = polled_fleet(hosts)
    web = find(hv1, "web-01")
    before = fleet.snapshot(hv1.uri)
    assert fleet.lease_status_for(WEB_01, hv1.uri).state is LeaseState.HELD
    assert fleet.set_domain_state(hv1.uri, web.uuid, DomainState.SHUT_OFF)  # the force off's success, no poll yet
    assert fleet.lease_status_for(WEB_01, hv1.uri).state is LeaseState.FREE
    # the cleanup preview's full read is newer than any confirmed state: it shows what it read
    fresh = {row.disk: row for row in fleet.fresh_lease_rows(hv1.uri, hv1.lease_manager().snapshot())}
    assert fresh[WEB_01].state is LeaseState.HELD  # (the driver has not forced it off yet)
    hv1.destroy(web.uuid)
    assert fleet.disks_held_elsewhere(hosts[1].uri, find(hosts[1], "web-standby")) == []
    # a poll that started before the force off shows what it read, not what was laid over the last one
    assert before is not None
    fleet.apply(before)
    assert fleet.lease_status_for(WEB_01, hv1.uri).state is LeaseState.HELD
    fleet.apply(hv1.poll())
    assert fleet.lease_status_for(WEB_01, hv1.uri).state is LeaseState.FREE


def test_the_first_refused_start_names_the_guest_whose_start_just_took_the_lease(hosts):
    """Two marked guests on one disk started together: the one refused names the one that won,
    whose start was confirmed but whose host was not polled since."""
    hv1, hv2 = hosts[0], hosts[1]
    web, standby = find(hv1, "web-01"), find(hv2, "web-standby")
    hv1.destroy(web.uuid)
    fleet = polled_fleet(hosts)
    assert fleet.lease_status_for(WEB_01, hv1.uri).state is LeaseState.FREE
    hv2.start(standby.uuid)
    fleet.set_domain_state(hv2.uri, standby.uuid, DomainState.RUNNING)
    with pytest.raises(LeaseConflict):
        hv1.start(web.uuid)
    assert fleet.disks_held_elsewhere(hv1.uri, fleet.domain(hv1.uri, web.uuid)) == [("vda", "hv2/web-standby")]


NODE = """<node xmlns:test="http://libvirt.org/schemas/domain/test/1.0"
      xmlns:virttui="https://virttui.dev/schemas/node/1">
  <virttui:host name="{host}" host_id="{host_id}"/>
  <domain type="test">
    <name>{name}</name>
    <memory unit="MiB">512</memory>
    <vcpu>1</vcpu>
    <os><type arch="x86_64">hvm</type></os>
    <devices>
      <disk type="file" device="disk">
        <source file="/images/shared.qcow2"/>
        <target dev="vda" bus="virtio"/>
      </disk>
    </devices>
    <test:runstate>5</test:runstate>
  </domain>
</node>
"""


def test_a_disk_never_leased_before_names_its_new_holder_before_its_lease_file_is_read(tmp_path: Path, lease_dir):
    drivers = []
    for host_id, (host, name) in enumerate((("hva", "one"), ("hvb", "two")), start=1):
        node = tmp_path / f"{host}.xml"
        node.write_text(NODE.format(host=host, host_id=host_id, name=name))
        drivers.append(TestDriver(f"test://{node}", str(node), lease_dir=str(lease_dir)))
    try:
        for driver in drivers:
            driver.connect()
        fleet = polled_fleet(drivers)
        hva, hvb = drivers
        one, two = find(hva, "one"), find(hvb, "two")
        hva.start(one.uuid)
        fleet.set_domain_state(hva.uri, one.uuid, DomainState.RUNNING)
        status = fleet.lease_status_for("/images/shared.qcow2", hva.uri)
        assert status is not None and status.state is LeaseState.HELD and status.holder == "hva/one"
        with pytest.raises(LeaseConflict):
            hvb.start(two.uuid)
        assert fleet.disks_held_elsewhere(hvb.uri, two) == [("vda", "hva/one")]
    finally:
        for driver in drivers:
            driver.close()


# -- plurals ------------------------------------------------------------------------------------
def test_one_host_is_not_one_hosts():
    assert all_row(1, 0, 0)[1][1].text == "1 host"
    assert all_row(3, 0, 0)[1][1].text == "3 hosts"

"""Lease status and cleanup against real sanlock: two hosts, one shared lease directory.

The `sanlock_stack` fixture (tests/realstack/) runs two namespaced test hosts,
each with its own sanlock daemon (host_id 1 and 2) and libvirtd configured
with lock_manager = "sanlock" and auto_disk_leases = 1, sharing one lease
directory. Debian's virt-sanlock-cleanup is the reference for cleanup.
"""

from __future__ import annotations

import json
import os
import uuid as uuidlib

import pytest
from support.app import settle
from support.realhosts import select_domain, until, wait_until

from virttui.cli import main
from virttui.console.app import VirtTUI
from virttui.drivers.model import ConnectionState
from virttui.drivers.registry import open_driver
from virttui.fleet import Fleet
from virttui.locks.leader import parse_leader
from virttui.locks.model import LeaseState
from virttui.locks.naming import sanlock_lease_name

pytestmark = pytest.mark.realstack
LOCKSPACE = "__LIBVIRT__DISKS__"


def fresh(prefix: str) -> str:
    return f"vttest-{prefix}{uuidlib.uuid4().hex[:6]}"


def lease_names(stack) -> set[str]:  # noqa: ANN001
    return set(os.listdir(stack.lease_dir))


@pytest.fixture
def two_guests(sanlock_stack):
    """One running guest on each host; each holds its disk's lease."""
    h1, h2 = sanlock_stack.hosts
    names = (fresh("one"), fresh("two"))
    h1.define_guest(names[0], start=True)
    h2.define_guest(names[1], start=True)
    yield names
    h1.undefine_guest(names[0])
    h2.undefine_guest(names[1])


def fleet_of(stack) -> tuple[Fleet, list]:  # noqa: ANN001
    drivers = [open_driver(host.ssh_uri) for host in stack.hosts]
    fleet = Fleet([d.uri for d in drivers])
    for driver in drivers:
        driver.connect()
        fleet.apply(driver.poll())
    return fleet, drivers


def close(drivers) -> None:  # noqa: ANN001
    for driver in drivers:
        driver.close()


def test_each_hosts_leases_show_held_by_that_host(sanlock_stack, two_guests):
    fleet, drivers = fleet_of(sanlock_stack)
    try:
        rows = {status.name: status for _, status in fleet.lease_rows()}
        one = rows[sanlock_lease_name(f"/var/lib/libvirt/images/{two_guests[0]}.qcow2")]
        two = rows[sanlock_lease_name(f"/var/lib/libvirt/images/{two_guests[1]}.qcow2")]
        assert (one.state, one.owner_host_id) == (LeaseState.HELD, 1)
        assert (two.state, two.owner_host_id) == (LeaseState.HELD, 2)
        assert one.holder == f"vthost1/{two_guests[0]}" and two.holder == f"vthost2/{two_guests[1]}"
        views = [driver.poll().leases for driver in drivers]
        assert [view.live_host_ids for view in views] == [(1, 2), (1, 2)]
        # both read one lockspace file: its first delta lease names host 1's sanlock daemon
        assert views[0].lockspace_identity == views[1].lockspace_identity == sanlock_stack.hosts[0].sanlock_host_name
    finally:
        close(drivers)


def test_leader_records_match_sanlocks_own_reading(sanlock_stack, two_guests):
    for name in (sanlock_lease_name(f"/var/lib/libvirt/images/{g}.qcow2") for g in two_guests):
        with open(os.path.join(sanlock_stack.lease_dir, name), "rb") as handle:
            ours = parse_leader(handle.read(512))
        theirs = sanlock_stack.lease_leader(name)
        assert ours.checksum_ok
        assert ours.owner_id == int(theirs["owner_id"])
        assert ours.owner_generation == int(theirs["owner_generation"])
        assert ours.lver == int(theirs["lver"])
        assert ours.timestamp == int(theirs["timestamp"])
        assert ours.space_name == theirs["space_name"] == LOCKSPACE
        assert ours.resource_name == theirs["resource_name"] == name


def test_cleanup_on_either_host_removes_no_held_lease(sanlock_stack, two_guests, ssh_client):
    stale = sanlock_stack.make_stale_lease(sanlock_lease_name(f"/stale/{fresh('s')}"))
    held = {sanlock_lease_name(f"/var/lib/libvirt/images/{g}.qcow2") for g in two_guests}
    for host in sanlock_stack.hosts:
        driver = open_driver(host.ssh_uri)
        driver.connect()
        try:
            report = driver.lease_manager().cleanup()
        finally:
            driver.close()
        kept = {o.name: o.reason for o in report.kept}
        assert held <= set(kept) and held <= lease_names(sanlock_stack)
    assert os.path.basename(stale) not in lease_names(sanlock_stack)
    assert LOCKSPACE in lease_names(sanlock_stack)


def test_leases_cli_status_json_and_cleanup_text(sanlock_stack, two_guests, capsys):
    h1, h2 = sanlock_stack.hosts
    stale = os.path.basename(sanlock_stack.make_stale_lease(sanlock_lease_name(f"/stale/{fresh('c')}")))
    assert main(["leases", "status", "--json", "-c", h1.ssh_uri, "-c", h2.ssh_uri]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows[stale]["state"] == "orphan"
    mine = rows[sanlock_lease_name(f"/var/lib/libvirt/images/{two_guests[0]}.qcow2")]
    assert (mine["state"], mine["owner_host_id"], mine["domains"]) == ("held", 1, [f"vthost1/{two_guests[0]}"])
    assert main(["leases", "cleanup", "--dry-run", "-c", h2.ssh_uri]) == 0
    assert stale in lease_names(sanlock_stack)
    capsys.readouterr()
    assert main(["leases", "cleanup", "-c", h2.ssh_uri]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"Cleanup: {LOCKSPACE}:{stale}:/var/lib/libvirt/sanlock/{stale}:0 PASS" in lines
    assert any(line.endswith(" FAIL") and mine["name"] in line for line in lines)
    assert stale not in lease_names(sanlock_stack)


def _reference_setup(stack, names: dict[str, list[str]]) -> list:  # noqa: ANN001
    """Stale leases, leases held by host 1 and by host 2, a garbage file: the same set-up every time."""
    h1, h2 = stack.hosts
    for name in names["stale"]:
        stack.make_stale_lease(name)
    holds = [h1.hold_lease(name) for name in names["host1"]] + [h2.hold_lease(name) for name in names["host2"]]
    for name in names["garbage"]:
        with open(os.path.join(stack.lease_dir, name), "wb") as handle:
            handle.write(os.urandom(4096))
    return holds


def test_cleanup_leaves_exactly_what_virt_sanlock_cleanup_leaves(sanlock_stack):
    names = {kind: [sanlock_lease_name(f"/ref/{kind}/{i}/{uuidlib.uuid4()}") for i in range(count)]
             for kind, count in (("stale", 4), ("host1", 2), ("host2", 2), ("garbage", 1))}
    everything = {n for group in names.values() for n in group}
    h1 = sanlock_stack.hosts[0]
    results = []
    for cleaner in ("virt-sanlock-cleanup", "virttui"):
        holds = _reference_setup(sanlock_stack, names)
        try:
            if cleaner == "virt-sanlock-cleanup":
                h1.run("virt-sanlock-cleanup", "-q")
            else:
                assert main(["leases", "cleanup", "-q", "-c", h1.ssh_uri]) == 0
            results.append(lease_names(sanlock_stack) & everything)
        finally:
            for hold in holds:
                hold.release()
        for name in everything & lease_names(sanlock_stack):
            os.unlink(os.path.join(sanlock_stack.lease_dir, name))
    assert results[0] == results[1]
    assert results[1] == set(names["host1"] + names["host2"] + names["garbage"])


async def test_a_disk_running_on_host_1_cannot_start_on_host_2_and_the_console_says_why(sanlock_stack):
    h1, h2 = sanlock_stack.hosts
    name = fresh("shared")
    h1.define_guest(name, start=True)
    h2.define_guest(name)  # same disk path on host 2
    try:
        uuid2 = h2.virsh("domuuid", name).strip()
        drivers = [open_driver(h.ssh_uri) for h in sanlock_stack.hosts]
        app = VirtTUI(drivers, poll_interval=0.5)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: all(app.fleet.host(d.uri).state is ConnectionState.CONNECTED
                                            for d in drivers) and app.fleet.domain(drivers[1].uri, uuid2))
            rows = {s.name: s for _, s in app.fleet.lease_rows()}
            status = rows[sanlock_lease_name(f"/var/lib/libvirt/images/{name}.qcow2")]
            assert status.state is LeaseState.HELD and "would conflict" in status.detail
            await select_domain(pilot, drivers[1].uri, uuid2)
            await pilot.press("s")
            await settle(pilot)
            await until(pilot, lambda: any("Failed to acquire lock" in n.message or "held by another host"
                                            in n.message for n in app._notifications))  # noqa: SLF001
        assert h2.virsh("domstate", name).strip() == "shut off"
    finally:
        h2.undefine_guest(name)
        h1.undefine_guest(name)


def test_bad_lease_files_never_crash_nor_go(sanlock_stack):
    h1 = sanlock_stack.hosts[0]
    truncated = sanlock_lease_name(f"/bad/{fresh('t')}")
    with open(os.path.join(sanlock_stack.lease_dir, truncated), "wb") as handle:
        handle.write(b"\x10\x20\x15\x06")  # the magic, then nothing
    not_md5 = "notes.txt"
    with open(os.path.join(sanlock_stack.lease_dir, not_md5), "w") as handle:
        handle.write("an operator's notes\n")
    driver = open_driver(h1.ssh_uri)
    driver.connect()
    try:
        files = {f.name: f for f in driver.poll().leases.files}
        assert "short leader record" in files[truncated].error and files[not_md5].error
        report = driver.lease_manager().cleanup()
        kept = {o.name: o.reason for o in report.kept}
        assert "not a lease" in kept[truncated] and kept[not_md5] == "not a lease file name"
        assert {truncated, not_md5} <= lease_names(sanlock_stack)
    finally:
        driver.close()
        for name in (truncated, not_md5):
            os.unlink(os.path.join(sanlock_stack.lease_dir, name))


def _lease_view(host):  # noqa: ANN001 - a TestHost: its lease directory as virttui sees it now
    driver = open_driver(host.ssh_uri)
    driver.connect()
    try:
        return driver.poll().leases
    finally:
        driver.close()


def test_a_stopped_sanlock_daemon_is_reported_per_host_and_cleanup_refuses(sanlock_stack, capsys):
    h1, h2 = sanlock_stack.hosts
    stale = os.path.basename(sanlock_stack.make_stale_lease(sanlock_lease_name(f"/stale/{fresh('d')}")))
    held_by_2 = sanlock_lease_name(f"/held/{fresh('d')}")
    hold = h2.hold_lease(held_by_2)
    h2.stop_sanlock(graceful=False)  # a crash: host 2's leases stay on disk, owned, its renewals stop
    try:
        # host 1's sanlock soon calls host 2 FAIL (not yet dead): its lease is still its own
        wait_until(lambda: 2 in _lease_view(h1).failing_host_ids, 40, "host 1 seeing host 2 failing")
        view = _lease_view(h1)
        assert 2 in view.live_host_ids and {f.name: f.held for f in view.files}[held_by_2] is True
        driver = open_driver(h2.ssh_uri)
        driver.connect()
        try:
            leases = driver.poll().leases
            assert "sanlock daemon on this host" in leases.error
            assert stale in {f.name for f in leases.files}  # the directory is still shown
        finally:
            driver.close()
        assert main(["leases", "cleanup", "-c", h2.ssh_uri]) == 1  # the error is a line on stderr; what was done (nothing) on stdout
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "sanlock daemon" in err[0]
        assert stale in lease_names(sanlock_stack)
    finally:
        h2.start_sanlock()
        h2.wait_lockspace()
    # host 2 is back in a new generation: the lease its old generation owned is no longer held by
    # anyone (sanlock would grant it), though its leader still names host 2
    wait_until(lambda: 2 in _lease_view(h1).live_host_ids and 2 not in _lease_view(h1).failing_host_ids, 40,
                "host 1 seeing host 2 live again")
    view = _lease_view(h1)
    leader = {f.name: f for f in view.files}[held_by_2]
    assert leader.leader.owner_id == 2 and leader.held is False
    hold.abandon()
    os.unlink(os.path.join(sanlock_stack.lease_dir, stale))
    os.unlink(os.path.join(sanlock_stack.lease_dir, held_by_2))



def test_a_symlink_in_the_lease_directory_is_never_followed_for_deletion(sanlock_stack):
    """A lease path that leads outside the directory: neither the link nor its target goes."""
    outside_dir = os.path.join(os.path.dirname(sanlock_stack.lease_dir), "outside")
    os.makedirs(outside_dir, exist_ok=True)
    name = sanlock_lease_name(f"/outside/{fresh('l')}")
    target = sanlock_stack.make_stale_lease(name)  # a real, acquirable lease…
    moved = os.path.join(outside_dir, name)
    os.rename(target, moved)  # …moved outside the lease directory
    link = os.path.join(sanlock_stack.lease_dir, name)
    os.symlink(moved, link)
    driver = open_driver(sanlock_stack.hosts[0].ssh_uri)
    driver.connect()
    try:
        kept = {o.name: o.reason for o in driver.lease_manager().cleanup().kept}
    finally:
        driver.close()
        os.unlink(link)
    assert "symbolic link" in kept[name]
    assert os.path.exists(moved)
    os.unlink(moved)

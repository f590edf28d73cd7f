"""Which disks libvirt leases, and which guests hold them: lease states as libvirt's lock managers see them.

libvirt (virDomainLockManagerAddImage) leases every disk on local storage (file, block, dir), whatever
its device, never a network disk; it releases a guest's leases while the guest is paused, and starts
a migration's target paused without them.
"""

from __future__ import annotations

from virttui.drivers.model import ConnectionState, Domain, DomainState, Host, HostSnapshot
from virttui.drivers.xmlparse import parse_domain, parse_xml
from virttui.fleet import Fleet
from virttui.locks.leader import pack_leader, parse_leader
from virttui.locks.model import LeaseDirSnapshot, LeaseFile, LeaseState
from virttui.locks.naming import sanlock_lease_name
from virttui.locks.status import DiskUse, compute_lease_status

LEASES = "/var/lib/libvirt/sanlock"


def _domain(name: str, disks_xml: str, state: DomainState) -> Domain:
    parsed = parse_domain(parse_xml(
        f"<domain type='kvm'><name>{name}</name><uuid>{sanlock_lease_name(name)}</uuid><memory>1</memory>"
        f"<devices>{disks_xml}</devices></domain>", "test"))
    return Domain(uuid=parsed.uuid, name=name, state=state, vcpus=1, memory_kib=1, max_memory_kib=1,
                  disks=parsed.disks)


def _lease(path: str, owner: int = 0) -> LeaseFile:
    name = sanlock_lease_name(path)
    record = parse_leader(pack_leader(space_name="__LIBVIRT__DISKS__", resource_name=name, owner_id=owner,
                                      timestamp=50 if owner else 0))
    return LeaseFile(name, f"{LEASES}/{name}", 1 << 20, record, held=bool(owner))


def _rows(*hosts: tuple[str, int, list[Domain], list[LeaseFile]]) -> dict[str, tuple]:
    fleet = Fleet([uri for uri, *_ in hosts])
    for uri, host_id, domains, files in hosts:
        fleet.apply(HostSnapshot(Host(uri=uri, hostname=uri.split("//")[1].split("/")[0],
                                      state=ConnectionState.CONNECTED), tuple(domains), taken_at=1.0,
                                 leases=LeaseDirSnapshot(LEASES, host_id, files=tuple(files), live_host_ids=(1, 2),
                                                         lockspace_identity="host1")))
    return {status.disk: (status.state, status.detail) for _, status in fleet.lease_rows()}


def test_a_network_disk_has_no_lease_so_none_is_missing():
    rbd = "<disk type='network' device='disk'><source protocol='rbd' name='pool/vm1'/><target dev='vda'/></disk>"
    assert _rows(("qemu+ssh://hv1/system", 1, [_domain("rbdvm", rbd, DomainState.RUNNING)], [])) == {}


def test_a_writable_floppy_and_lun_are_leased_like_any_local_disk():
    disks = ("<disk type='file' device='floppy'><source file='/images/boot.img'/><target dev='fda'/></disk>"
             "<disk type='block' device='lun'><source dev='/dev/mapper/lun0'/><target dev='sda' bus='scsi'/></disk>")
    rows = _rows(("qemu+ssh://hv1/system", 1, [_domain("fdvm", disks, DomainState.RUNNING)], []))
    assert {disk: state for disk, (state, _) in rows.items()} == {
        "/images/boot.img": LeaseState.MISSING, "/dev/mapper/lun0": LeaseState.MISSING}


def test_a_migrations_paused_target_is_no_conflict():
    disk = "<disk type='file' device='disk'><source file='/images/web.qcow2'/><target dev='vda'/></disk>"
    lease = [_lease("/images/web.qcow2", 1)]
    rows = _rows(("qemu+ssh://hv1/system", 1, [_domain("web", disk, DomainState.RUNNING)], lease),
                 ("qemu+ssh://hv2/system", 2, [_domain("web", disk, DomainState.PAUSED)], lease))
    state, detail = rows["/images/web.qcow2"]
    assert state is LeaseState.HELD and detail == "host 1, domain web; resuming hv2/web would conflict"
    both_running = _rows(("qemu+ssh://hv1/system", 1, [_domain("web", disk, DomainState.RUNNING)], lease),
                         ("qemu+ssh://hv2/system", 2, [_domain("web", disk, DomainState.RUNNING)], lease))
    assert both_running["/images/web.qcow2"][0] is LeaseState.CONFLICT


def test_the_holder_named_is_the_guest_writing_the_disk_not_a_reader():
    path = "/images/db.qcow2"
    snap = LeaseDirSnapshot(LEASES, 1, files=(_lease(path, 1),), live_host_ids=(1,))
    uses = [DiskUse("hv1", 1, "backup-reader", path, True, False), DiskUse("hv1", 1, "db", path, True, True)]
    row = compute_lease_status(snap, uses)[0]
    assert (row.holder, row.detail) == ("hv1/db", "host 1, domain db")


def test_the_hosts_pane_says_failing_for_a_host_that_stopped_renewing():
    from virttui.screens.main import _liveness

    view = LeaseDirSnapshot(LEASES, 1, live_host_ids=(1, 2), failing_host_ids=(2,))
    assert [_liveness(view, host_id) for host_id in (1, 2, 3)] == ["live", "failing", "not live"]


def test_a_lease_of_a_failing_host_says_so():
    path = "/images/db.qcow2"
    snap = LeaseDirSnapshot(LEASES, 1, files=(_lease(path, 2),), live_host_ids=(1, 2), failing_host_ids=(2,))
    row = compute_lease_status(snap, [DiskUse("hv2", 2, "db", path, True, True)])[0]
    assert (row.state, row.detail) == (LeaseState.HELD, "host 2, domain db; host 2 is failing (not renewing)")

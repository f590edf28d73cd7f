"""Rates from snapshot deltas."""

from virttui.drivers.model import ConnectionState, Domain, DomainState, Host, HostSnapshot
from virttui.fleet import Fleet, cpu_percent


def dom(cpu_ns, state=DomainState.RUNNING):
    return Domain(uuid="u", name="n", state=state, vcpus=2, memory_kib=1, max_memory_kib=1, cpu_time_ns=cpu_ns)


def test_cpu_percent_uses_interval_and_host_cpus_and_clamps():
    assert cpu_percent(dom(0), dom(2_000_000_000), 2.0, 4) == 25.0
    assert cpu_percent(dom(0), dom(10**12), 1.0, 1) == 100.0
    assert cpu_percent(dom(5), dom(0), 1.0, 1) == 0.0  # counter reset after a restart
    assert cpu_percent(dom(0), dom(0, DomainState.SHUT_OFF), 1.0, 1) is None
    assert cpu_percent(dom(0), dom(1), 0.0, 1) is None


def test_fleet_rates_and_history():
    fleet = Fleet(["test:///a"])
    host = Host(uri="test:///a", cpus=2, state=ConnectionState.CONNECTED)
    fleet.apply(HostSnapshot(host, (dom(0),), taken_at=10.0))
    assert fleet.domain_rows()[0].cpu_percent is None
    fleet.apply(HostSnapshot(host, (dom(1_000_000_000),), taken_at=11.0))
    assert fleet.domain_rows()[0].cpu_percent == 50.0
    assert fleet.history("test:///a", "u")[0] == [50.0]
    fleet.set_host(Host(uri="test:///a", state=ConnectionState.ERROR, last_error="down"))
    assert fleet.domain_rows() == []  # a host in error shows no stale domains


# -- lease directories: one path, one or several directories ------------------------------------
from dataclasses import replace  # noqa: E402

from virttui.locks.leader import pack_leader, parse_leader  # noqa: E402
from virttui.locks.model import LeaseDirSnapshot, LeaseFile, LeaseState  # noqa: E402
from virttui.locks.naming import sanlock_lease_name  # noqa: E402
from virttui.locks.sharing import merge_views  # noqa: E402

PATH = "/var/lib/libvirt/sanlock"


def _view(host_id, live, names, owner=0):
    files = tuple(LeaseFile(name, f"{PATH}/{name}", 1 << 20,
                            parse_leader(pack_leader(space_name="__LIBVIRT__DISKS__", resource_name=name, owner_id=owner,
                                                     timestamp=5 * owner)),
                            held=bool(owner))
                  for name in names)
    return LeaseDirSnapshot(PATH, host_id, files=files, live_host_ids=tuple(live))


def _fleet(*views):
    uris = [f"test:///hv{i}" for i in range(1, len(views) + 1)]
    fleet = Fleet(uris)
    for uri, view in zip(uris, views):
        fleet.apply(HostSnapshot(Host(uri=uri, hostname=uri[-3:], state=ConnectionState.CONNECTED), (),
                                 taken_at=1.0, leases=view))
    return fleet


def test_hosts_that_see_each_other_live_share_one_directory():
    fleet = _fleet(_view(1, [1, 2], ["a" * 32]), _view(2, [1, 2], ["a" * 32, "b" * 32]))
    assert list(fleet.lease_dirs()) == [PATH]
    assert fleet.lease_dir_of("test:///hv1") == fleet.lease_dir_of("test:///hv2") == PATH


def test_two_clusters_on_the_default_path_stay_two_directories_even_with_the_same_file_names():
    disk = "/var/lib/libvirt/images/web.img"  # each cluster has a guest on this path: one lease name
    same = sanlock_lease_name(disk)
    fleet = _fleet(_view(1, [1], [same, "a" * 32], owner=1), _view(1, [1], [same]))
    assert sorted(fleet.lease_dirs()) == [f"{PATH} · hv1", f"{PATH} · hv2"]
    keys = [(directory, status.name) for directory, status in fleet.lease_rows()]
    assert len(keys) == len(set(keys)) == 3  # every file of both shown, no row key twice
    assert fleet.lease_status_for(disk, "test:///hv1").state is LeaseState.HELD
    assert fleet.lease_status_for(disk, "test:///hv2").state is LeaseState.ORPHAN  # not hv1's lease


def test_without_sanlock_evidence_the_same_files_mean_the_same_directory():
    fleet = _fleet(_view(1, [], ["a" * 32]), _view(2, [], ["a" * 32]))
    assert list(fleet.lease_dirs()) == [PATH]
    fleet = _fleet(_view(1, [], ["a" * 32]), _view(2, [], ["b" * 32]))
    assert len(fleet.lease_dirs()) == 2


def test_two_clusters_whose_hosts_have_one_name_stay_two_directories():
    """Fresh installs are all "localhost.localdomain": the directories are then told apart by URI."""
    uris = ["test:///a", "test:///b"]
    fleet = Fleet(uris)
    for uri, view in zip(uris, (_view(1, [1], ["a" * 32], owner=1), _view(1, [1], ["b" * 32])), strict=True):
        fleet.apply(HostSnapshot(Host(uri=uri, hostname="localhost.localdomain", state=ConnectionState.CONNECTED),
                                 (), taken_at=1.0, leases=view))
    # two hosts of one name are shown with their URIs (Fleet labels), and so are their directories
    assert sorted(fleet.lease_dirs()) == [f"{PATH} · localhost.localdomain (test:///a)",
                                          f"{PATH} · localhost.localdomain (test:///b)"]
    assert fleet.lease_dir_of("test:///a") != fleet.lease_dir_of("test:///b")
    assert {status.name for _, status in fleet.lease_rows()} == {"a" * 32, "b" * 32}


def test_the_samples_of_a_domain_that_is_gone_go_with_it():
    """Hosts that create and destroy transient domains all day must not keep every UUID ever seen."""
    fleet = Fleet(["test:///a"])
    host = Host(uri="test:///a", cpus=2, state=ConnectionState.CONNECTED)

    def running(uuid: str, ns: int) -> Domain:
        return Domain(uuid=uuid, name=uuid, state=DomainState.RUNNING, vcpus=1, memory_kib=1, max_memory_kib=1,
                      cpu_time_ns=ns)

    for step in range(50):
        fleet.apply(HostSnapshot(host, (running("stays", step), running(f"t{step // 2}", step)), taken_at=float(step)))
    assert fleet.history("test:///a", "stays")[0]
    assert len(fleet._history["test:///a"]) <= 2  # noqa: SLF001


def test_two_clusters_numbering_hosts_alike_stay_two_directories_by_their_lockspace_files():
    """Cluster A's host 1 and cluster B's host 2 each see host_ids 1 and 2 live, in their own
    lockspaces: the first delta lease of each lockspace file names a different owner."""
    a1 = replace(_view(1, [1, 2], ["a" * 32], owner=1), lockspace_identity="host-a1-uuid")
    b2 = replace(_view(2, [1, 2], ["b" * 32], owner=2), lockspace_identity="host-b1-uuid")
    assert sorted(_fleet(a1, b2).lease_dirs()) == [f"{PATH} · hv1", f"{PATH} · hv2"]
    same = replace(b2, lockspace_identity="host-a1-uuid")
    assert list(_fleet(a1, same).lease_dirs()) == [PATH]


def test_a_host_any_peer_sees_live_is_not_failing_in_the_merged_view():
    one = replace(_view(1, [1, 2], ["a" * 32]), failing_host_ids=(2,))  # host 1's daemon: host 2 missed renewals
    two = _view(2, [1, 2], ["a" * 32])  # host 2 itself: renewing
    three = replace(_view(3, [1, 2, 3], ["a" * 32]), failing_host_ids=(2,))
    assert merge_views([one, three]).failing_host_ids == (2,)
    assert merge_views([one, two, three]).failing_host_ids == ()

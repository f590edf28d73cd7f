"""libvirt's config syntax, the lock settings read with it, sanlock's status output, the lease agent's scan."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from virttui.locks.agent import scan
from virttui.locks.agentrunner import AgentRunner
from virttui.locks.embedded import write_free_lease
from virttui.locks.hostleases import HostLeaseManager
from virttui.locks.libvirtconf import LibvirtConfError, lock_config, parse_libvirt_conf
from virttui.locks.model import LockConfig
from virttui.locks.naming import lockd_lease_name, sanlock_lease_name
from virttui.locks.sanlockstatus import parse_client_status, parse_host_status

SANLOCK_CONF = """
# comments everywhere
auto_disk_leases = 1   # trailing comment
disk_lease_dir = "/srv/nfs/sanlock"
host_id = 7; io_timeout = 4
require_lease_for_disks = 0
user = 'sanlock'
"""


def test_the_issue_test_vector():
    assert sanlock_lease_name("/var/lib/libvirt/images/demo.img") == "bfa0240911bc17753e0b473688822159"
    assert len(lockd_lease_name("/var/lib/libvirt/images/demo.img")) == 64


def test_libvirt_config_syntax():
    entries = parse_libvirt_conf('a = 1 # one\nb = "two"\nc = [ "x",\n  "y",\n]\nd = """multi\nline"""\ne=-3\r'
                                 'f = 4; g = 5\n# the end\n')
    assert entries == {"a": 1, "b": "two", "c": ["x", "y"], "d": "multi\nline", "e": -3, "f": 4, "g": 5}


@pytest.mark.parametrize("text, line", [
    ('a = "unterminated\n', 1),
    ("a = 1\nb = \n", 2),
    ("a = 1\n\n= 3\n", 3),
    ("a = [1, 2\nb = 2\n", 2),
    ("a = 1 2\n", 1),
    ('a = [ "x", # no comments inside a list\n "y" ]\n', 1),  # as libvirt 9: "expecting a value"
    ("_a = 1\n", 1),
    ("a.b = 1\n", 1),
    ("; a = 1\n", 1),
    ("\n\n", 3),  # nothing but newlines: libvirt wants a name at the end
])
def test_malformed_config_names_file_and_line(text, line):
    with pytest.raises(LibvirtConfError, match=rf"^/etc/libvirt/x.conf:{line}: "):
        parse_libvirt_conf(text, "/etc/libvirt/x.conf")


def test_lock_config_from_the_three_files():
    config = lock_config('lock_manager = "sanlock"\n', SANLOCK_CONF, 'file_lockspace_dir = "/var/lib/libvirt/lockd/files"')
    assert config == LockConfig(manager="sanlock", auto_disk_leases=True, disk_lease_dir="/srv/nfs/sanlock",
                                host_id=7, require_lease_for_disks=False, io_timeout=4,
                                file_lockspace_dir="/var/lib/libvirt/lockd/files")
    assert lock_config(None, None, None).manager == "nop"
    assert lock_config(None, "auto_disk_leases = 1", None).require_lease_for_disks is False
    with pytest.raises(LibvirtConfError, match="host_id must be a number"):
        lock_config(None, 'host_id = "one"', None)


def test_a_setting_given_twice_keeps_its_first_value_as_libvirt_does():
    assert lock_config('lock_manager = "sanlock"', "host_id = 1\nhost_id = 2\n", None).host_id == 1
    with pytest.raises(LibvirtConfError, match=":2: "):  # the later one is still parsed
        parse_libvirt_conf('host_id = 1\nhost_id = "two\n', "/etc/libvirt/qemu-sanlock.conf")


@pytest.mark.parametrize("sanlock, lockd, problem", [
    ('disk_lease_dir = ""', None, "disk_lease_dir must be an absolute path"),
    ('disk_lease_dir = "leases"', None, "disk_lease_dir must be an absolute path"),
    (None, 'file_lockspace_dir = "files"', "file_lockspace_dir must be an absolute path"),
    ("host_id = 2001", None, "host_id must be 1 to 2000"),
    ("host_id = -1", None, "host_id must be 1 to 2000"),
    ("io_timeout = -5", None, "io_timeout must not be negative"),
])
def test_settings_that_would_scan_the_wrong_place_or_that_sanlock_refuses_are_errors(sanlock, lockd, problem):
    with pytest.raises(LibvirtConfError, match=problem):
        lock_config('lock_manager = "sanlock"', sanlock, lockd)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_config_parser_raises_only_its_own_error(text):
    try:
        parse_libvirt_conf(text)
    except LibvirtConfError:
        pass


def test_sanlock_client_status():
    status = parse_client_status(
        "daemon 1f6b-host1\np -1 helper\np 4242 qemu\n"
        "s __LIBVIRT__DISKS__:1:/var/lib/libvirt/sanlock/__LIBVIRT__DISKS__:0\n"
        "s other:3:/dev/x:0 ADD\n"
        "r __LIBVIRT__DISKS__:bfa0240911bc17753e0b473688822159:/var/lib/libvirt/sanlock/bfa0:0:3 p 4242\n")
    assert status.lockspaces == {"__LIBVIRT__DISKS__": 1}
    assert status.joining == {"other"}
    assert status.resources == {"__LIBVIRT__DISKS__:bfa0240911bc17753e0b473688822159": 4242}
    assert parse_host_status("1 timestamp 4021\n2 timestamp 0\njunk\n") == {1: 4021, 2: 0}


def test_agent_scan_reads_heads_and_refuses_symlinks(tmp_path):
    free = write_free_lease(str(tmp_path), "/images/a.qcow2")
    (tmp_path / "garbage").write_bytes(b"x" * 10)
    os.symlink("/etc/passwd", tmp_path / "link")
    result = scan(str(tmp_path), "__LIBVIRT__DISKS__", False)
    by_name = {f["name"]: f for f in result["files"]}
    assert by_name[os.path.basename(free)]["head"].startswith("10201506")  # PAXOS_DISK_MAGIC, little-endian
    assert by_name["garbage"]["head"] == (b"x" * 10).hex()
    assert "symbolic link" in by_name["link"]["error"]
    assert scan(str(tmp_path / "nope"), "__LIBVIRT__DISKS__", False)["error"]


def test_host_lease_manager_reports_corrupt_free_and_a_missing_directory(tmp_path):
    free = write_free_lease(str(tmp_path), "/images/a.qcow2")
    (tmp_path / "0123456789abcdef0123456789abcdef").write_bytes(b"\0" * 512)
    config = LockConfig(manager="sanlock", auto_disk_leases=True, disk_lease_dir=str(tmp_path), host_id=1)
    snap = HostLeaseManager(config, AgentRunner()).snapshot()
    files = {f.name: f for f in snap.files}
    assert files[os.path.basename(free)].leader is not None and not files[os.path.basename(free)].held
    assert "bad magic" in files["0123456789abcdef0123456789abcdef"].error
    gone = LockConfig(manager="sanlock", disk_lease_dir=str(tmp_path / "missing"), host_id=1)
    assert "No such file" in HostLeaseManager(gone, AgentRunner()).snapshot().error


def test_lockd_files_are_held_while_the_kernel_has_their_lock(tmp_path):
    import subprocess
    import sys

    from virttui.locks.status import DiskUse, compute_lease_status

    lockspace = tmp_path / "lockd"
    lockspace.mkdir()
    held_path = lockspace / lockd_lease_name("/images/running.qcow2")
    idle_path = lockspace / lockd_lease_name("/images/stopped.qcow2")
    held_path.write_bytes(b"")
    idle_path.write_bytes(b"")
    config = LockConfig(manager="lockd", file_lockspace_dir=str(lockspace))
    # what virtlockd does for a running guest's disk: an fcntl lock held by another process
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl,sys; f=open(sys.argv[1],'r+b'); "
                               "fcntl.lockf(f, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()",
                               str(held_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        snap = HostLeaseManager(config, AgentRunner()).snapshot()
    finally:
        holder.stdin.close()
        holder.wait(10)
    uses = [DiskUse("hv1", 0, "web", "/images/running.qcow2", True, True),
            DiskUse("hv1", 0, "db", "/images/stopped.qcow2", False, True)]
    states = {row.name: row.state.value for row in compute_lease_status(snap, uses)}
    assert snap.manager == "lockd"
    assert states == {held_path.name: "held", idle_path.name: "free"}
    with pytest.raises(OSError, match="sanlock"):
        HostLeaseManager(config, AgentRunner()).cleanup()


def test_without_the_daemons_answers_status_shows_the_error_and_a_dry_run_keeps_everything(lease_dir):
    held_by_two = write_free_lease(str(lease_dir), "/images/b.qcow2", last_owner=2)

    class DaemonHalfAnswering:  # `client status` answered; `host_status` failed
        def scan(self, directory, lockspace, with_sanlock):  # noqa: ANN001, ANN202
            raw = scan(directory, lockspace, False)
            raw.update(status="daemon 0\n", status_error="", host_status=None,
                       host_status_error="sanlock daemon: connection refused")
            return raw

    config = LockConfig(manager="sanlock", auto_disk_leases=True, disk_lease_dir=str(lease_dir), host_id=1)
    manager = HostLeaseManager(config, DaemonHalfAnswering())
    assert "host_status: sanlock daemon: connection refused" in manager.snapshot().error
    report = manager.cleanup(dry_run=True)
    assert report.removed == () and os.path.exists(held_by_two)
    assert [o.reason.startswith("unknown") for o in report.outcomes] == [True]


@pytest.mark.parametrize("answer", [None, [], {"files": None}, {"files": [{"name": "a", "size": "big"}]},
                                    {"files": [{"name": 3, "head": 7}], "status": 5}])
def test_an_agent_answer_of_the_wrong_shape_is_a_lease_directory_error(answer):
    class Nonsense:
        def scan(self, directory, lockspace, with_sanlock):  # noqa: ANN001, ANN202
            return answer

    config = LockConfig(manager="sanlock", auto_disk_leases=True, disk_lease_dir="/var/lib/libvirt/sanlock", host_id=1)
    snap = HostLeaseManager(config, Nonsense()).snapshot()
    assert snap.files == () or all(f.error for f in snap.files)
    assert snap.error or all(f.error for f in snap.files)


@pytest.mark.parametrize("failing", ["status", "host_status", "both"])
def test_without_the_daemons_answers_an_owned_lease_shows_held_not_free(lease_dir, failing):
    """`client status` failing hides what this host holds, `host_status` failing hides which hosts are
    live: a leader record that names an owner then counts as held, never as free or orphan."""
    from virttui.locks.leader import pack_leader
    from virttui.locks.model import LOCKSPACE_NAME, LeaseState
    from virttui.locks.status import compute_lease_status

    def owned(disk: str, owner: int) -> str:
        name = sanlock_lease_name(disk)
        with open(lease_dir / name, "wb") as handle:
            handle.write(pack_leader(space_name=LOCKSPACE_NAME, resource_name=name, owner_id=owner,
                                     owner_generation=1, lver=1, timestamp=1234))
            handle.truncate(1 << 20)
        return name

    mine, theirs = owned("/images/mine.qcow2", 1), owned("/images/theirs.qcow2", 2)

    class DaemonFailing:
        def scan(self, directory, lockspace, with_sanlock):  # noqa: ANN001, ANN202
            raw = scan(directory, lockspace, False)
            status_down, hosts_down = failing in ("status", "both"), failing in ("host_status", "both")
            raw.update(status=None if status_down else "daemon 0\n",
                       status_error="connection refused" if status_down else "",
                       host_status=None if hosts_down else "1 timestamp 50\n2 timestamp 60\n",
                       host_status_error="connection refused" if hosts_down else "")
            return raw

    config = LockConfig(manager="sanlock", auto_disk_leases=True, disk_lease_dir=str(lease_dir), host_id=1)
    snap = HostLeaseManager(config, DaemonFailing()).snapshot()
    states = {row.name: row.state for row in compute_lease_status(snap, [])}
    assert snap.error
    assert states[theirs] is LeaseState.HELD  # host 2 live, or not known not to be
    assert states[mine] is (LeaseState.HELD if failing != "host_status" else LeaseState.ORPHAN)


GETS_H = (  # `sanlock client gets -h 1` on a host whose peer (host 2) crashed a moment ago
    "s other:3:/dev/x:0 \n"
    "h 2 gen 9 timestamp 100 LIVE\n"
    "s __LIBVIRT__DISKS__:1:/var/lib/libvirt/sanlock/__LIBVIRT__DISKS__:0 \n"
    "h 1 gen 1 timestamp 63541 LIVE\n"
    "h 2 gen 1 timestamp 63533 FAIL\n"
    "h 3 gen 4 timestamp 12 DEAD\n"
    "h 4 gen 2 timestamp 0 FREE\n"
    "h x gen y timestamp z LIVE\n"
)


def test_sanlock_gets_hosts_of_one_lockspace():
    from virttui.locks.sanlockstatus import HostState, parse_lockspace_hosts

    joined, hosts = parse_lockspace_hosts(GETS_H, "__LIBVIRT__DISKS__")
    assert joined and hosts == {1: HostState(1, 63541, "LIVE"), 2: HostState(1, 63533, "FAIL"),
                                3: HostState(4, 12, "DEAD"), 4: HostState(2, 0, "FREE")}
    assert [h for h, state in hosts.items() if state.holding] == [1, 2]
    not_ready = "s __LIBVIRT__DISKS__:1:/p:0 \nhosts not ready\n"
    assert parse_lockspace_hosts(not_ready, "__LIBVIRT__DISKS__") == (True, None)
    # ... whatever lockspace sanlock lists after it, and when it says "hosts error" or lists none
    assert parse_lockspace_hosts(not_ready + "s lvm_vg:1:/dev/vg/lvmlock:0 \nh 1 gen 1 timestamp 5 LIVE\n",
                                 "__LIBVIRT__DISKS__") == (True, None)
    errors = "s __LIBVIRT__DISKS__:1:/p:0 \nhosts error -28\n"
    assert parse_lockspace_hosts(errors, "__LIBVIRT__DISKS__") == (True, None)
    assert parse_lockspace_hosts("s __LIBVIRT__DISKS__:1:/p:0 \n", "__LIBVIRT__DISKS__") == (True, None)
    assert parse_lockspace_hosts("s other:3:/dev/x:0 \n", "__LIBVIRT__DISKS__") == (False, None)


@pytest.mark.parametrize(("hosts", "held", "error"), [
    ("h 1 gen 1 timestamp 9 LIVE\nh 2 gen 1 timestamp 60 LIVE\n", True, ""),
    ("h 1 gen 1 timestamp 9 LIVE\nh 2 gen 1 timestamp 60 FAIL\n", True, ""),  # not dead yet: still its lease
    ("h 1 gen 1 timestamp 9 LIVE\nh 2 gen 1 timestamp 60 DEAD\n", False, ""),  # sanlock grants it now
    ("h 1 gen 1 timestamp 9 LIVE\nh 2 gen 2 timestamp 60 LIVE\n", False, ""),  # rejoined: gen 1's lease is stale
    ("hosts not ready\n", True, ""),  # joined a moment ago: unknown for seconds, the leader decides
])
def test_another_hosts_lease_is_held_while_sanlock_says_its_owner_holds_it(lease_dir, hosts, held, error):
    from virttui.locks.leader import pack_leader
    from virttui.locks.model import LOCKSPACE_NAME

    name = sanlock_lease_name("/images/theirs.qcow2")
    with open(lease_dir / name, "wb") as handle:
        handle.write(pack_leader(space_name=LOCKSPACE_NAME, resource_name=name, owner_id=2,
                                 owner_generation=1, lver=1, timestamp=1234))
        handle.truncate(1 << 20)

    class Daemon:
        def scan(self, directory, lockspace, with_sanlock):  # noqa: ANN001, ANN202
            raw = scan(directory, lockspace, False)
            raw.update(status="daemon 0\n", status_error="", hosts_error="",
                       hosts=f"s {LOCKSPACE_NAME}:1:{directory}/{LOCKSPACE_NAME}:0 \n{hosts}")
            return raw

    config = LockConfig(manager="sanlock", auto_disk_leases=True, disk_lease_dir=str(lease_dir), host_id=1)
    snap = HostLeaseManager(config, Daemon()).snapshot()
    assert {f.name: f.held for f in snap.files} == {name: held} and snap.error == error
    assert snap.failing_host_ids == ((2,) if "FAIL" in hosts else ())


def test_a_lockspace_this_host_has_not_joined_is_an_error_and_hosts_count_as_unknown(lease_dir):
    class Daemon:
        def scan(self, directory, lockspace, with_sanlock):  # noqa: ANN001, ANN202
            raw = scan(directory, lockspace, False)
            raw.update(status="daemon 0\n", status_error="", hosts="s other:3:/dev/x:0 \n", hosts_error="")
            return raw

    config = LockConfig(manager="sanlock", auto_disk_leases=True, disk_lease_dir=str(lease_dir), host_id=1)
    assert "lockspace __LIBVIRT__DISKS__ is not joined" in HostLeaseManager(config, Daemon()).snapshot().error


@pytest.mark.parametrize(("manager", "printed"), [
    ("sanlock", '{"files": [{"name": "x", "size": 1e999, "error": "boom"}]}'),  # int(inf): OverflowError
    ("sanlock", '{"files": [{"name": "x", "size": Infinity, "error": "boom"}]}'),
    ("lockd", '{"files": [{"name": "x", "size": NaN}]}'),
    ("sanlock", "[" * 100000 + "]" * 100000),  # RecursionError in the JSON parser
])
def test_a_hosts_agent_printing_hostile_json_is_a_lease_directory_error(manager, printed):
    from virttui.drivers.transport import CommandResult

    class Host:  # what the host's "python3" printed
        def run(self, argv, timeout=30.0):  # noqa: ANN001, ANN202
            return CommandResult(0, printed, "")

    config = LockConfig(manager=manager, auto_disk_leases=True, host_id=1, file_lockspace_dir="/var/lib/libvirt/lockd")
    snap = HostLeaseManager(config, AgentRunner(Host())).snapshot()
    assert snap.error.startswith("lease directory ") and snap.files == ()


def test_virtlockd_has_its_own_auto_disk_leases_and_device_lockspaces(tmp_path):
    from virttui.locks.status import DiskUse, compute_lease_status

    tmp_path = tmp_path / "lockd"
    tmp_path.mkdir()
    off = lock_config('lock_manager = "lockd"\n', "auto_disk_leases = 1\n",
                      f'auto_disk_leases = 0\nfile_lockspace_dir = "{tmp_path}"\n')
    assert (off.manager, off.auto_disk_leases, off.device_lockspaces) == ("lockd", False, False)
    on = lock_config('lock_manager = "lockd"\n', None, f'file_lockspace_dir = "{tmp_path}"\n'
                     'lvm_lockspace_dir = "/var/lib/libvirt/lockd/lvmvolumes"\n')
    assert (on.auto_disk_leases, on.device_lockspaces) == (True, True)  # virtlockd's default is on
    uses = [DiskUse("hv1", 0, "web", "/images/web.qcow2", True, True),
            DiskUse("hv1", 0, "db", "/dev/vg0/db", True, True)]
    missing = {row.disk for row in compute_lease_status(HostLeaseManager(on, AgentRunner()).snapshot(), uses)}
    assert missing == {"/images/web.qcow2"}  # the LV's lease is in the LVM lockspace, by its UUID
    assert compute_lease_status(HostLeaseManager(off, AgentRunner()).snapshot(), uses) == []

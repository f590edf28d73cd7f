"""Lease naming, leader records, file-lock exclusion (in and across processes), status and cleanup."""

import ast
import hashlib
import json
import os
import struct
import subprocess
import sys
import textwrap

import pytest

from virttui.drivers.errors import LeaseConflict
from virttui.locks import ofd
from virttui.locks.embedded import EmbeddedLeaseStore, write_free_lease
from virttui.locks.leader import LeaderError, pack_leader, parse_leader
from virttui.locks.model import LOCKSPACE_NAME, LeaseState
from virttui.locks.naming import lockd_lease_name, sanlock_lease_name
from virttui.locks.status import DiskUse, compute_lease_status

DISK = "/var/lib/libvirt/images/demo.img"


def test_lease_names():
    assert sanlock_lease_name(DISK) == "bfa0240911bc17753e0b473688822159"
    assert lockd_lease_name(DISK) == hashlib.sha256(DISK.encode()).hexdigest()
    assert len(lockd_lease_name(DISK)) == 64


def test_leader_round_trip_and_checksum():
    raw = pack_leader(space_name=LOCKSPACE_NAME, resource_name="abc", owner_id=2, owner_generation=3, lver=4,
                      timestamp=99)
    record = parse_leader(raw)
    assert (record.owner_id, record.owner_generation, record.lver, record.timestamp) == (2, 3, 4, 99)
    assert record.space_name == LOCKSPACE_NAME and record.resource_name == "abc" and record.checksum_ok
    damaged = bytearray(raw)
    damaged[40] ^= 1
    assert not parse_leader(bytes(damaged)).checksum_ok


@pytest.mark.parametrize("raw", [b"", b"\0" * 512, b"garbage" * 100, struct.pack("<I", 0x12212010) + b"\0" * 508])
def test_bad_leader_records_raise(raw):
    with pytest.raises(LeaderError):
        parse_leader(raw)


@pytest.fixture
def stores(lease_dir):
    made = [EmbeddedLeaseStore(str(lease_dir), host_id) for host_id in (1, 2)]
    for store in made:
        store.join_lockspace()
    yield made
    for store in made:
        store.release_all()


def test_acquire_creates_md5_named_sanlock_lease_and_release_frees_it(stores, lease_dir):
    one, _ = stores
    path = one.acquire(DISK)
    assert os.path.basename(path) == "bfa0240911bc17753e0b473688822159"
    assert os.path.getsize(path) == 1024 * 1024
    snap = one.snapshot()
    (lease,) = snap.files
    assert lease.held and lease.leader.owner_id == 1 and not lease.leader.is_free
    one.release(DISK)
    (lease,) = one.snapshot().files
    assert not lease.held and lease.leader.is_free and os.path.exists(path)
    assert snap.live_host_ids == (1, 2)


def test_two_stores_in_one_process_conflict(stores):
    one, two = stores
    one.acquire(DISK)
    with pytest.raises(LeaseConflict, match="held by host_id 1"):
        two.acquire(DISK)
    one.release(DISK)
    two.acquire(DISK)


def test_two_processes_conflict(stores, lease_dir):
    one, _ = stores
    one.acquire(DISK)
    script = textwrap.dedent(f"""
        from virttui.drivers.errors import LeaseConflict
        from virttui.locks.embedded import EmbeddedLeaseStore
        store = EmbeddedLeaseStore({str(lease_dir)!r}, 3)
        try:
            store.acquire({DISK!r})
        except LeaseConflict as exc:
            print("CONFLICT", exc)
        else:
            print("ACQUIRED")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.startswith("CONFLICT")
    one.release(DISK)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.startswith("ACQUIRED")


def test_cleanup_removes_only_leases_it_can_take(stores, lease_dir):
    one, two = stores
    held_by_one = one.acquire("/img/a.qcow2")
    held_by_two = two.acquire("/img/b.qcow2")
    stale = write_free_lease(str(lease_dir), "/img/old.qcow2", last_owner=2)
    garbage = lease_dir / "0123456789abcdef0123456789abcdef"
    garbage.write_bytes(b"not a lease")
    os.symlink(held_by_one, lease_dir / "fedcba9876543210fedcba9876543210")
    progress = []
    report = one.cleanup(progress=lambda i, n, o: progress.append((i, n, o.name)))
    removed = {o.path for o in report.removed}
    assert removed == {stale}
    assert os.path.exists(held_by_one) and os.path.exists(held_by_two) and garbage.exists()
    assert (lease_dir / LOCKSPACE_NAME).exists()
    reasons = {o.name: o.reason for o in report.kept}
    assert reasons[os.path.basename(held_by_one)] == "lease is held"
    assert reasons[os.path.basename(held_by_two)] == "lease is held"
    assert "not a lease" in reasons[garbage.name]
    assert "symbolic link" in reasons["fedcba9876543210fedcba9876543210"]
    assert [p[0] for p in progress] == list(range(1, len(report.outcomes) + 1))


def test_cleanup_dry_run_removes_nothing(stores, lease_dir):
    one, _ = stores
    stale = write_free_lease(str(lease_dir), "/img/old.qcow2")
    report = one.cleanup(dry_run=True)
    assert [o.path for o in report.removed] == [stale] and os.path.exists(stale)


def test_cleanup_limited_to_named_files_skips_the_rest(stores, lease_dir):
    one, _ = stores
    a = write_free_lease(str(lease_dir), "/img/a")
    b = write_free_lease(str(lease_dir), "/img/b")
    one.cleanup([os.path.basename(a)])
    assert not os.path.exists(a) and os.path.exists(b)


def test_status_sees_a_lease_another_process_holds_and_takes_nothing(stores, lease_dir, monkeypatch):
    one, _ = stores
    script = textwrap.dedent(f"""
        import sys
        from virttui.locks.embedded import EmbeddedLeaseStore
        store = EmbeddedLeaseStore({str(lease_dir)!r}, 3)
        store.acquire({DISK!r})
        print("HELD", flush=True)
        sys.stdin.read()  # until the test closes our stdin
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "HELD"
        opened = []
        real_open = open
        monkeypatch.setattr("builtins.open", lambda path, *a, **k: opened.append(str(path)) or real_open(path, *a, **k))
        (lease,) = one.snapshot().files
        assert lease.held and lease.leader.owner_id == 3
        assert "/proc/locks" not in opened  # asked of the file itself, not the kernel's table of every lock
        monkeypatch.undo()
        with pytest.raises(LeaseConflict):
            one.acquire(DISK)  # the status read did not take or break the other process's lock
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    (lease,) = one.snapshot().files
    assert not lease.held  # the process went, and its lock with it
    one.acquire(DISK)


def test_asking_whether_a_file_is_locked_takes_no_lock(tmp_path):
    path = tmp_path / "lease"
    path.write_bytes(b"x" * 512)
    reader = os.open(path, os.O_RDONLY)
    writer = os.open(path, os.O_RDWR)
    other = os.open(path, os.O_RDWR)
    try:
        assert not ofd.is_locked(reader)
        assert ofd.try_lock(writer)  # the question above left nothing behind
        assert ofd.is_locked(reader)
        assert not ofd.try_lock(other)  # one open file's lock excludes another's in the same process
        ofd.unlock(writer)
        assert not ofd.is_locked(reader) and ofd.try_lock(other)
    finally:
        for fd in (reader, writer, other):
            os.close(fd)


def test_status_states(stores, lease_dir):
    one, two = stores
    one.acquire("/img/run1")
    write_free_lease(str(lease_dir), "/img/stopped")
    write_free_lease(str(lease_dir), "/img/gone")
    (lease_dir / "0123456789abcdef0123456789abcdef").write_bytes(b"junk")
    uses = [
        DiskUse("hv1", 1, "run1", "/img/run1", running=True, exclusive=True),
        DiskUse("hv2", 2, "standby", "/img/run1", running=False, exclusive=True),
        DiskUse("hv1", 1, "stopped", "/img/stopped", running=False, exclusive=True),
        DiskUse("hv2", 2, "nolease", "/img/nolease", running=True, exclusive=True),
        DiskUse("hv1", 1, "twice-a", "/img/twice", running=True, exclusive=True),
        DiskUse("hv2", 2, "twice-b", "/img/twice", running=True, exclusive=True),
    ]
    rows = {r.disk or r.name: r for r in compute_lease_status(one.snapshot(), uses)}
    assert rows["/img/run1"].state is LeaseState.HELD
    assert rows["/img/run1"].owner_host_id == 1 and rows["/img/run1"].holder == "hv1/run1"
    assert "hv2/standby would conflict" in rows["/img/run1"].detail
    assert rows["/img/stopped"].state is LeaseState.FREE
    assert rows[sanlock_lease_name("/img/gone")].state is LeaseState.ORPHAN
    assert rows["0123456789abcdef0123456789abcdef"].state is LeaseState.CORRUPT
    assert rows["/img/nolease"].state is LeaseState.MISSING
    assert rows["/img/twice"].state is LeaseState.CONFLICT


def test_unreadable_directory_is_reported_not_raised(tmp_path):
    store = EmbeddedLeaseStore(str(tmp_path / "missing"), 1)
    snap = store.snapshot()
    assert snap.error and "missing" in snap.error and snap.files == ()


def test_a_leader_with_a_bad_checksum_is_corrupt_not_free(stores, lease_dir):
    one, _ = stores
    path = write_free_lease(str(lease_dir), "/img/flipped")
    with open(path, "r+b") as handle:  # the lver changed behind the checksum's back: magic intact
        handle.seek(48)
        handle.write(b"\x07")
    rows = {r.name: r for r in compute_lease_status(one.snapshot(), [])}
    assert rows[os.path.basename(path)].state is LeaseState.CORRUPT
    assert "checksum" in rows[os.path.basename(path)].detail


def test_an_embedded_dry_run_takes_no_lock_a_starting_guest_could_meet(stores, lease_dir, monkeypatch):
    one, two = stores
    write_free_lease(str(lease_dir), "/img/starting")
    taken = []
    monkeypatch.setattr(ofd, "try_lock", lambda fd: taken.append(fd) or True)
    assert [o.removed for o in one.cleanup(dry_run=True).outcomes] == [True]
    assert taken == []  # it only asked (F_OFD_GETLK)
    monkeypatch.undo()
    two.acquire("/img/starting")  # now held by another store: the dry run says so, still without locking
    assert [o.reason for o in one.cleanup(dry_run=True).outcomes] == ["lease is held"]


def test_every_live_host_id_is_seen_not_only_the_first_sixteen(lease_dir):
    stores = [EmbeddedLeaseStore(str(lease_dir), host_id) for host_id in (1, 17, 2000)]
    try:
        for store in stores:
            store.join_lockspace()
        assert stores[0].live_host_ids() == (1, 17, 2000)
    finally:
        for store in stores:
            store.release_all()


def _leader_file(directory, name: str, *, space: str = LOCKSPACE_NAME, resource: str | None = None,
                 size: int = 1 << 20, damage: bool = False) -> str:
    """A file whose first sector is a leader record: a real lease, or one sanlock would refuse."""
    record = bytearray(pack_leader(space_name=space, resource_name=name if resource is None else resource))
    if damage:
        record[48] ^= 7  # behind the checksum's back
    path = os.path.join(str(directory), name)
    with open(path, "wb") as handle:
        handle.write(bytes(record)[:size])
        handle.truncate(size)
    return path


def _refused_files(lease_dir) -> dict[str, str]:
    """name -> the reason sanlock would refuse it; each a file with a leader record, some free."""
    md5 = sanlock_lease_name
    files = {
        "notes.txt": _leader_file(lease_dir, "notes.txt"),  # a valid record, but not a lease name
        "--all": _leader_file(lease_dir, "--all"),
        md5("/bad/sum"): _leader_file(lease_dir, md5("/bad/sum"), damage=True),
        md5("/other/ls"): _leader_file(lease_dir, md5("/other/ls"), space="OTHER"),
        md5("/other/res"): _leader_file(lease_dir, md5("/other/res"), resource=md5("/elsewhere")),
        md5("/short"): _leader_file(lease_dir, md5("/short"), size=300),
    }
    return {name: path for name, path in files.items()}


def test_cleanup_removes_no_file_sanlock_would_refuse(stores, lease_dir):
    """Wrong names, bad checksums, another lockspace or resource, a file shorter than a sector: the embedded
    store has no sanlock to refuse them, so it refuses them itself, as a real cleanup's sanlock would."""
    one, _ = stores
    files = _refused_files(lease_dir)
    stale = write_free_lease(str(lease_dir), "/img/stale")
    for dry_run in (True, False):
        report = one.cleanup(dry_run=dry_run)
        assert [o.path for o in report.removed] == [stale]
        reasons = {o.name: o.reason for o in report.kept}
        assert reasons["notes.txt"] == reasons["--all"] == "not a lease file name"
        assert "checksum" in reasons[sanlock_lease_name("/bad/sum")]
        assert "another lockspace" in reasons[sanlock_lease_name("/other/ls")]
        assert "another resource" in reasons[sanlock_lease_name("/other/res")]
        assert reasons[sanlock_lease_name("/short")]
    assert all(os.path.exists(path) for path in files.values())


def test_a_host_dry_run_predicts_what_sanlock_would_refuse(lease_dir):
    from virttui.locks.agent import scan
    from virttui.locks.agentrunner import AgentRunner
    from virttui.locks.hostleases import HostLeaseManager
    from virttui.locks.model import LockConfig

    class DaemonAnswering(AgentRunner):  # a sanlock daemon holding nothing, no other host live
        def scan(self, directory, lockspace, with_sanlock):  # noqa: ANN001, ANN202
            return {**scan(directory, lockspace, False), "status": "daemon 0\n", "status_error": "",
                    "host_status": "", "host_status_error": ""}

    files = _refused_files(lease_dir)
    stale = write_free_lease(str(lease_dir), "/img/stale")
    config = LockConfig(manager="sanlock", auto_disk_leases=True, disk_lease_dir=str(lease_dir), host_id=1)
    report = HostLeaseManager(config, DaemonAnswering()).cleanup(dry_run=True)
    assert [o.path for o in report.removed] == [stale]
    assert {o.name for o in report.kept} == set(files)
    assert all(os.path.exists(path) for path in files.values())


def test_names_that_are_no_lease_never_reach_the_host(lease_dir):
    """A file named "--all" (which the agent once took for "every file") or one whose name is not UTF-8 is
    answered here, without running the agent."""
    from virttui.locks.hostleases import HostLeaseManager
    from virttui.locks.model import LockConfig

    class NoAgent:
        def cleanup(self, directory, lockspace, names):  # noqa: ANN001, ANN202
            raise AssertionError(f"the agent was asked about {names}")

    config = LockConfig(manager="sanlock", auto_disk_leases=True, disk_lease_dir=str(lease_dir), host_id=1)
    names = ["--all", os.fsdecode(b"bad\xffname"), sanlock_lease_name("/x") + "\n"]
    report = HostLeaseManager(config, NoAgent()).cleanup(names)
    assert report.removed == () and [o.reason for o in report.kept] == ["not a lease file name"] * 3


def test_the_agent_takes_a_file_named_all_as_a_name(lease_dir, capsys):
    from virttui.locks import agentmain

    _leader_file(lease_dir, "--all")
    assert agentmain.main(["cleanup", str(lease_dir), LOCKSPACE_NAME, "--", "--all"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == [{"name": "--all", "path": str(lease_dir / "--all"), "removed": False,
                      "reason": "not a lease file name"}]
    assert agentmain.main(["cleanup", str(lease_dir), LOCKSPACE_NAME, "--all-please"]) == 2
    assert "usage" in capsys.readouterr().out


def test_the_agent_cleans_files_in_the_order_they_lie_on_disk(lease_dir):
    """By inode (one directory read): neighbours freed together share a discard; md5 order is random."""
    from virttui.locks import agentcleanup

    names = [sanlock_lease_name(f"/disk/{i}") for i in range(20)]
    for name in names:
        _leader_file(lease_dir, name)
    by_inode = sorted(names, key=lambda name: os.stat(lease_dir / name).st_ino)
    assert by_inode != sorted(names)  # else this test proves nothing
    assert agentcleanup._in_disk_order(str(lease_dir), sorted(names) + ["gone"]) == by_inode + ["gone"]
    assert agentcleanup._in_disk_order(str(lease_dir / "missing"), ["b", "a"]) == ["b", "a"]


def test_the_agent_stays_runnable_by_python_3_6():
    """The agent runs on the host's own python3: RHEL/CentOS 8 hypervisors have 3.6 (checked by hand with
    3.6.15: scan and cleanup). Its grammar must be 3.6's, and it must not call what 3.7 added."""
    import ast

    from virttui.locks.agentrunner import AGENT_SOURCE

    ast.parse(AGENT_SOURCE, feature_version=(3, 6))
    for newer in ("__future__", "preadv", "pwritev", "capture_output", "text=True", "breakpoint(",
                  "fromisoformat", "removeprefix", "time_ns", "contextlib.nullcontext", ":="):
        assert newer not in AGENT_SOURCE


def test_the_agent_is_one_program_without_virttui(tmp_path):
    """Its three modules run as one python3 -I -S -c program, with none of their imports of each other."""
    import subprocess
    import sys

    from virttui.locks.agentrunner import AGENT_SOURCE

    assert "from virttui" not in AGENT_SOURCE and "import virttui" not in AGENT_SOURCE
    tree = ast.parse(AGENT_SOURCE)
    defined = [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
    assert len(defined) == len(set(defined)), "a name defined twice: the later module would shadow the earlier"
    empty = tmp_path / "leases"
    empty.mkdir()
    answer = subprocess.run([sys.executable, "-I", "-S", "-c", AGENT_SOURCE, "scan", str(empty), LOCKSPACE_NAME],
                            capture_output=True, text=True, timeout=30, cwd=tmp_path, check=True)
    assert json.loads(answer.stdout)["files"] == []

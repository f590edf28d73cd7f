"""A host's lease view reads only what can have changed (HostLeaseManager.poll_snapshot).

The agent runs in process on a private directory; the sanlock daemon's answers are given by each
test. Storage reads are counted where they happen: the agent's first-sector reads.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from support.clock import SteppedClock as Clock

from virttui.locks import agent
from virttui.locks.agentrunner import AgentRunner
from virttui.locks.embedded import write_free_lease
from virttui.locks.hostleases import HostLeaseManager
from virttui.locks.leader import DELTA_DISK_MAGIC, DELTA_DISK_VERSION, pack_leader
from virttui.locks.model import LOCKSPACE_NAME, LeaseState, LockConfig
from virttui.locks.naming import sanlock_lease_name
from virttui.locks.readers import ReaderElection
from virttui.locks.sharing import merge_views
from virttui.locks.status import compute_lease_status


class Daemon(AgentRunner):
    """The agent in process, with a sanlock daemon that holds `held` and sees `live` host_ids live."""

    def __init__(self, host_id: int, live: tuple[int, ...] = (1, 2)) -> None:
        super().__init__()
        self.host_id = host_id
        self.live = live
        self.held: set[str] = set()
        self.reads = 0
        self.fail = False

    def _answers(self, raw: dict, directory: str) -> dict:
        raw["status"] = "".join(f"r {LOCKSPACE_NAME}:{name}:{directory}/{name}:0:1 p 99\n" for name in self.held)
        raw["status_error"] = ""
        raw["hosts"] = f"s {LOCKSPACE_NAME}:{self.host_id}:{directory}/{LOCKSPACE_NAME}:0 \n" + "".join(
            f"h {h} gen 1 timestamp 100 LIVE\n" for h in self.live)
        raw["hosts_error"] = ""
        return raw

    def poll(self, directory, lockspace, **options):  # noqa: ANN001, ANN003, ANN201
        if self.fail:
            raise OSError("connection lost")
        raw = agent.poll(directory, lockspace, False, options["known"], options["reread"], options["identity"],
                         options["with_heads"], options["budget"], options["rate"])
        self.reads += raw["reads"]
        return self._answers(raw, directory)

    def scan(self, directory, lockspace, with_sanlock):  # noqa: ANN001, ANN201
        raw = agent.scan(directory, lockspace, False)
        self.reads += len(raw["files"])
        return self._answers(raw, directory)


@pytest.fixture
def lease_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "leases"
    directory.mkdir()
    lockspace = directory / LOCKSPACE_NAME
    lockspace.write_bytes(pack_leader(space_name=LOCKSPACE_NAME, resource_name="cluster-a", owner_id=1,
                                      owner_generation=1, timestamp=5, magic=DELTA_DISK_MAGIC,
                                      version=DELTA_DISK_VERSION).ljust(1 << 20, b"\0"))
    return directory


def manager(directory: Path, host_id: int, election: ReaderElection, clock: Clock) -> HostLeaseManager:
    election.read_rate, election.read_budget = 0.0, 0  # as fast as the disk answers, unless a test says
    config = LockConfig(manager="sanlock", auto_disk_leases=True, disk_lease_dir=str(directory), host_id=host_id)
    return HostLeaseManager(config, Daemon(host_id), election=election, clock=clock)


def disks(count: int) -> list[str]:
    return [f"/images/guest-{i}.qcow2" for i in range(count)]


@pytest.mark.usefixtures("settled_lease_files")
def test_a_steady_directory_costs_no_reads_until_its_slow_pass_and_then_only_a_rotation(lease_dir):
    for disk in disks(2000):
        write_free_lease(str(lease_dir), disk, last_owner=2)
    clock = Clock()
    host = manager(lease_dir, 1, ReaderElection(clock), clock)
    first = host.poll_snapshot()
    assert len(first.files) == 2000 and first.complete and not first.error
    assert host.runner.reads == 2001  # every leader record once, and the lockspace file's
    for _ in range(10):
        clock.now += 2
        assert host.poll_snapshot() is first  # nothing changed: the same view, not a rebuilt one
    assert host.runner.reads == 2001
    clock.now += 30
    host.poll_snapshot()
    assert host.runner.reads == 2001 + 1 + 100  # the lockspace's identity, and 2000 x 30 s / 600 s re-read
    # reads a second in steady state, at a 2 s poll: (1 + 100) / 30 s, far under the 20 a second allowed
    assert (1 + 100) / 30 < 20


def test_a_changed_file_is_read_at_the_next_pass_and_a_fresh_snapshot_sees_it_at_once(lease_dir):
    names = [os.path.basename(write_free_lease(str(lease_dir), disk)) for disk in disks(20)]
    clock = Clock()
    host = manager(lease_dir, 1, ReaderElection(clock), clock)
    host.poll_snapshot()
    write_free_lease(str(lease_dir), "/images/guest-3.qcow2", last_owner=7, lver=9)  # another host took and freed it
    os.unlink(lease_dir / names[5])
    fresh = {f.name: f for f in host.snapshot().files}  # the cleanup preview, a dry run, `leases status`
    assert fresh[names[3]].leader.owner_id == 7 and names[5] not in fresh
    clock.now += 31
    polled = {f.name: f for f in host.poll_snapshot().files}
    assert polled[names[3]].leader.lver == 9 and names[5] not in polled


class CountingDaemon(Daemon):
    def __init__(self, host_id: int) -> None:
        super().__init__(host_id)
        self.runs = 0

    def poll(self, directory, lockspace, **options):  # noqa: ANN001, ANN003, ANN201
        self.runs += 1
        return super().poll(directory, lockspace, **options)


@pytest.mark.parametrize("watched, runs", [(1, 1), (2, 2), (0, 2)])
def test_the_console_s_one_host_reads_its_directory_in_the_run_that_learns_which_it_is(lease_dir, watched, runs):
    """With other hosts (or a count not known), the first poll learns which directory this is before
    reading it, so that hosts sharing it read it once; the console's one host shares it with nobody."""
    for disk in disks(30):
        write_free_lease(str(lease_dir), disk)
    clock = Clock()
    election = ReaderElection(clock)
    election.watched_hosts = watched
    host = manager(lease_dir, 1, election, clock)
    host.runner = CountingDaemon(1)
    first = host.poll_snapshot()
    assert host.runner.runs == runs
    assert len(first.files) == 30 and first.complete and first.lockspace_identity == "cluster-a"
    assert host.runner.reads == 31  # every leader record once, and the lockspace file's, either way
    clock.now += 2
    assert host.poll_snapshot().files == first.files and host.runner.runs == runs + 1
    assert host.runner.reads == 31  # the next poll reads nothing: the files are the directory's, not lost


def test_one_reader_per_shared_directory_and_another_takes_over_when_it_fails(lease_dir):
    for disk in disks(300):
        write_free_lease(str(lease_dir), disk)
    clock = Clock()
    election = ReaderElection(clock)
    one, two = manager(lease_dir, 1, election, clock), manager(lease_dir, 2, election, clock)
    one.poll_snapshot()
    two_view = two.poll_snapshot()
    assert one.runner.reads == 301 and two.runner.reads == 1  # host 2 read only the lockspace's identity
    assert len(two_view.files) == 300 and two_view.complete  # its view shares what host 1 read
    one.runner.fail = True
    clock.now += 31
    assert one.poll_snapshot().error  # the reader's agent failed: it gives way at once
    two.poll_snapshot()
    assert two.runner.reads > 1  # host 2 made this cycle's pass


def test_a_connected_hosts_daemon_decides_at_once_and_names_the_holder(lease_dir):
    """Host 2 starts a guest: its daemon holds the new lease before anyone read the file; it stops
    the guest: the lease is free at the next poll, though the leader record read earlier says owned."""
    clock = Clock()
    election = ReaderElection(clock)
    one, two = manager(lease_dir, 1, election, clock), manager(lease_dir, 2, election, clock)
    one.poll_snapshot()
    two.poll_snapshot()
    name = sanlock_lease_name("/images/new.qcow2")
    two.runner.held.add(name)
    write_free_lease(str(lease_dir), "/images/new.qcow2", last_owner=2)
    merged = merge_views([one.poll_snapshot(), two.poll_snapshot()])
    row = {s.name: s for s in compute_lease_status(merged, [])}[name]
    assert (row.state, row.owner_host_id) == (LeaseState.HELD, 2)
    clock.now += 31  # the file is read, with a leader record that says host 2 owns it
    one.poll_snapshot()
    two.runner.held.clear()
    merged = merge_views([one.poll_snapshot(), two.poll_snapshot()])
    assert {s.name: s for s in compute_lease_status(merged, [])}[name].state is LeaseState.ORPHAN


def test_the_incremental_view_matches_a_fresh_read_after_random_changes(lease_dir):
    rng = random.Random(7)
    clock = Clock()
    host = manager(lease_dir, 1, ReaderElection(clock), clock)
    paths = disks(60)
    for disk in paths[:30]:
        write_free_lease(str(lease_dir), disk)
    host.poll_snapshot()
    for _round in range(8):
        for _ in range(10):
            disk = rng.choice(paths)
            name = lease_dir / sanlock_lease_name(disk)
            action = rng.choice(["add", "remove", "rewrite", "truncate"])
            if action == "remove":
                name.unlink(missing_ok=True)
            elif action == "truncate" and name.exists():
                os.truncate(name, rng.choice([0, 100, 511]))
            else:
                write_free_lease(str(lease_dir), disk, last_owner=rng.randrange(0, 5), lver=rng.randrange(1, 50))
        clock.now += 31
        polled = host.poll_snapshot()
        fresh = host.snapshot()
        assert [(f.name, f.leader, f.error, f.held) for f in polled.files] == \
               [(f.name, f.leader, f.error, f.held) for f in fresh.files]


def test_a_host_added_after_every_other_went_away_reads_afresh(lease_dir):
    """A cache nobody uses any more is dropped: files read before a host was there are never trusted."""
    write_free_lease(str(lease_dir), "/images/a.qcow2")
    clock = Clock()
    election = ReaderElection(clock)
    gone = manager(lease_dir, 1, election, clock)
    gone.poll_snapshot()
    gone.close()
    write_free_lease(str(lease_dir), "/images/b.qcow2")
    later = manager(lease_dir, 1, election, clock)
    assert len(later.poll_snapshot().files) == 2 and later.runner.reads == 3


def test_hosts_that_only_ask_their_daemon_read_no_identity_until_the_reader_finds_the_directory_moved(lease_dir):
    write_free_lease(str(lease_dir), "/images/a.qcow2")
    clock = Clock()
    election = ReaderElection(clock)
    one, two = manager(lease_dir, 1, election, clock), manager(lease_dir, 2, election, clock)
    one.poll_snapshot()
    two.poll_snapshot()
    for _ in range(5):  # three passes of host 1's: host 2 reads nothing at all
        clock.now += 31
        one.poll_snapshot()
        two.poll_snapshot()
    assert two.runner.reads == 1
    (lease_dir / LOCKSPACE_NAME).write_bytes(pack_leader(  # host 1's daemon restarted under another name
        space_name=LOCKSPACE_NAME, resource_name="cluster-a-2", owner_id=1, owner_generation=2, timestamp=9,
        magic=DELTA_DISK_MAGIC, version=DELTA_DISK_VERSION).ljust(1 << 20, b"\0"))
    clock.now += 31
    assert one.poll_snapshot().lockspace_identity == "cluster-a-2"
    assert two.poll_snapshot().lockspace_identity == "cluster-a-2"  # told by the move, it checked its own
    assert two.runner.reads == 2


@pytest.mark.usefixtures("settled_lease_files")
def test_a_pass_reads_at_most_its_budget_spaced_out_and_the_next_polls_go_on(lease_dir):
    """sanlock renews on the same storage: a burst of reads would queue its renewal behind them."""
    import time

    for disk in disks(50):
        write_free_lease(str(lease_dir), disk)
    clock = Clock()
    election = ReaderElection(clock)
    host = manager(lease_dir, 1, election, clock)
    election.read_rate, election.read_budget = 200.0, 20
    started = time.monotonic()
    first = host.poll_snapshot()
    assert time.monotonic() - started >= 19 / 200  # 20 reads, 5 ms apart
    assert host.runner.reads == 1 + 20 and len(first.files) == 20
    host.poll_snapshot()  # no slow interval to wait: the pass goes on at the next poll
    assert host.runner.reads == 1 + 40
    assert len(host.poll_snapshot().files) == 50 and host.runner.reads == 1 + 50
    clock.now += 2
    host.poll_snapshot()
    assert host.runner.reads == 51  # done: nothing more until the slow interval


def test_a_lease_no_connected_daemon_explains_is_as_the_freshest_pass_found_it():
    """A host the console does not reach released a lease: the pass that saw it free wins over an
    older view that still says held (the union kept it held until every host had polled again)."""
    from dataclasses import replace as changed

    from virttui.locks.model import LeaseDirSnapshot, LeaseFile

    leader = pack_leader(space_name=LOCKSPACE_NAME, resource_name="x" * 32, owner_id=9, owner_generation=1,
                         timestamp=5)
    from virttui.locks.leader import parse_leader

    lease = LeaseFile("x" * 32, "/d/" + "x" * 32, 1 << 20, parse_leader(leader), held=True)
    older = LeaseDirSnapshot("/d", 1, files=(lease,), daemon_held=frozenset(), as_of=100.0)
    newer = LeaseDirSnapshot("/d", 2, files=(changed(lease, held=False),), daemon_held=frozenset(), as_of=130.0)
    assert [f.held for f in merge_views([older, newer]).files] == [False]
    assert [f.held for f in merge_views([changed(older, as_of=160.0), newer]).files] == [True]
    unknown = [changed(older, as_of=0.0), changed(newer, as_of=0.0)]  # no pass times: any view holding it
    assert [f.held for f in merge_views(unknown).files] == [True]


def test_a_name_from_the_directory_goes_back_to_the_host_only_if_a_command_may_carry_it(lease_dir):
    """The rotation names files to read again: a junk file named with a control character (or a comma,
    which would split the argument) is never among them; it is still listed, as not a lease."""
    write_free_lease(str(lease_dir), "/images/a.qcow2")
    (lease_dir / "junk\x1b[2J").write_bytes(b"x")
    (lease_dir / "a,b").write_bytes(b"x")
    clock = Clock()
    host = manager(lease_dir, 1, ReaderElection(clock), clock)
    host._full_interval = host.slow_interval  # noqa: SLF001 - the whole directory in every rotation
    sent: list[list[str]] = []
    real = host.runner.poll

    def recording(directory, lockspace, **options):  # noqa: ANN001, ANN003, ANN202
        sent.append(list(options["reread"]))
        return real(directory, lockspace, **options)

    host.runner.poll = recording
    host.poll_snapshot()
    clock.now += 31
    names = {f.name for f in host.poll_snapshot().files}
    assert {"junk\x1b[2J", "a,b"} <= names
    carried = [name for names_sent in sent for name in names_sent]
    assert carried and not [name for name in carried if not name.isprintable() or "," in name]


def test_files_read_before_the_lockspace_was_readable_are_not_taken_for_its_directory(lease_dir):
    """A host that could not read its lockspace's owner keeps what it reads private. When it learns
    the owner at a poll that reads no files, the directory is read afresh for the shared cache:
    files read earlier, maybe from other storage, do not become that directory's."""
    for disk in disks(30):
        write_free_lease(str(lease_dir), disk)
    lockspace = lease_dir / LOCKSPACE_NAME
    joined = lockspace.read_bytes()
    lockspace.write_bytes(b"\0" * len(joined))  # not joined yet: no owner to name the directory by
    clock = Clock()
    host = manager(lease_dir, 1, ReaderElection(clock), clock)
    host.slow_interval, host._full_interval = 1000.0, 10.0  # noqa: SLF001 - the owner checked before a pass
    assert len(host.poll_snapshot().files) == 30 and host.runner.reads == 31
    lockspace.write_bytes(joined)
    clock.now += 11
    view = host.poll_snapshot()
    assert view.lockspace_identity == "cluster-a"
    assert host.runner.reads == 31 + 1 + 30  # the owner, then the 30 files read again for its key

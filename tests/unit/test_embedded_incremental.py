"""Embedded lease views at fleet scale: poll_snapshot() costs what changed, not hosts × files.

Stores share one cache per directory (readers.ELECTION); each test has its own election and a
stepped clock for the cadence of passes, so "after the slow interval" is a step, not a sleep.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
import textwrap
import time
from dataclasses import replace

import pytest
from support.clock import SteppedClock

from virttui.drivers.errors import LeaseConflict
from virttui.drivers.model import ConnectionState, Disk, Domain, DomainState, Host, HostSnapshot
from virttui.fleet import Fleet
from virttui.locks.embedded import EmbeddedLeaseStore, write_free_lease
from virttui.locks.leader import pack_leader
from virttui.locks.model import LeaseState
from virttui.locks.naming import sanlock_lease_name
from virttui.locks.readers import ReaderElection

SLOW = 30.0


@pytest.fixture
def election(clock: SteppedClock) -> ReaderElection:
    return ReaderElection(clock=clock)


def make_stores(lease_dir, clock, election, count=3, *, full=0.0, first_host=1):
    """Joined stores on lease_dir; full=0: no rotation, so a pass reads only what changed."""
    made = [EmbeddedLeaseStore(str(lease_dir), host_id, slow_interval=SLOW, full_interval=full,
                               election=election, monotonic=clock)
            for host_id in range(first_host, first_host + count)]
    for store in made:
        store.join_lockspace()
    return made


def close_all(stores):
    for store in stores:
        store.release_all()
        store.close()


def cache_of(store):
    return store._cache


def counting_preads(monkeypatch):
    calls = []
    real = os.pread

    def counted(fd, size, offset):
        calls.append(fd)
        return real(fd, size, offset)

    monkeypatch.setattr(os, "pread", counted)
    return calls


def fresh_equal(view, fresh):
    """An incremental view says what a fresh read says (when and how completely it was read aside)."""
    return replace(view, complete=True, as_of=0.0) == replace(fresh, as_of=0.0)


@pytest.mark.usefixtures("settled_lease_files")
def test_polls_between_passes_read_nothing_and_three_stores_cost_one_reader(lease_dir, clock, election,
                                                                            monkeypatch):
    for index in range(2000):
        write_free_lease(str(lease_dir), f"/img/disk-{index}.qcow2", last_owner=1 + index % 3)
    stores = make_stores(lease_dir, clock, election)
    try:
        first = [store.poll_snapshot() for store in stores]
        assert all(len(view.files) == 2000 and view.complete and not view.error for view in first)
        assert cache_of(stores[0]) is cache_of(stores[1]) is cache_of(stores[2])
        read_once = cache_of(stores[0]).reads
        assert read_once <= 2000 + 1  # every leader record once (and the lockspace), not once per store
        preads = counting_preads(monkeypatch)
        for _ in range(10):
            clock.advance(2.0)
            again = [store.poll_snapshot() for store in stores]
            assert all(view is before for view, before in zip(again, first, strict=True))  # Fleet skips them
        assert preads == [] and cache_of(stores[0]).reads == read_once
        clock.advance(SLOW)
        again = [store.poll_snapshot() for store in stores]
        assert cache_of(stores[0]).reads - read_once <= 1  # a pass over unchanged files: the lockspace
        assert len(preads) <= 1
        assert all(view is before for view, before in zip(again, first, strict=True))  # it found nothing new
    finally:
        close_all(stores)


@pytest.mark.usefixtures("settled_lease_files")
def test_a_pass_rereads_a_rotation_so_every_record_is_read_within_the_full_interval(lease_dir, clock, election):
    for index in range(200):
        write_free_lease(str(lease_dir), f"/img/disk-{index}.qcow2")
    (store,) = make_stores(lease_dir, clock, election, 1, full=10 * SLOW)
    try:
        store.poll_snapshot()
        cache = cache_of(store)
        for _ in range(10):
            before = cache.reads
            clock.advance(SLOW)
            store.poll_snapshot()
            assert cache.reads - before == 20 + 1  # 200 files × 30 s / 300 s, and the lockspace
    finally:
        close_all([store])


def test_exactly_one_store_reads_at_a_pass_and_another_takes_over_when_it_closes(lease_dir, clock, election):
    for index in range(50):
        write_free_lease(str(lease_dir), f"/img/disk-{index}.qcow2")
    stores = make_stores(lease_dir, clock, election)
    passes = {store.host_id: 0 for store in stores}
    for store in stores:
        real = store._pass

        def counted(*args, real=real, host_id=store.host_id):
            passes[host_id] += 1
            return real(*args)

        store._pass = counted
    try:
        for _ in range(5):  # at 0, 15, 30, 45 and 60 s: passes at 0, 30 and 60
            for store in stores:
                store.poll_snapshot()
            clock.advance(SLOW / 2)
        assert sum(passes.values()) == 3 and sorted(passes.values()) == [0, 0, 3]
        reader = next(store for store in stores if passes[store.host_id])
        rest = [store for store in stores if store is not reader]
        reader.release_all()
        reader.close()
        added = write_free_lease(str(lease_dir), "/img/after-the-reader-left")
        counts = dict(passes)
        rest[0].poll_snapshot()
        assert passes == counts  # not due yet: the last pass is younger than the slow interval
        clock.advance(SLOW)
        view = rest[0].poll_snapshot()
        assert passes[rest[0].host_id] == counts[rest[0].host_id] + 1  # its next due poll
        assert os.path.basename(added) in {f.name for f in view.files}
        assert os.path.basename(added) in {f.name for f in rest[1].poll_snapshot().files}
        assert passes[rest[1].host_id] == counts[rest[1].host_id]
    finally:
        close_all(stores)


def _running(name, disk):
    return Domain(uuid=name, name=name, state=DomainState.RUNNING, vcpus=1, memory_kib=1, max_memory_kib=1,
                  disks=(Disk(target="vda", source=disk),))


def test_a_lease_a_store_takes_shows_held_at_its_next_poll_and_in_the_fleet(lease_dir, clock, election,
                                                                          monkeypatch):
    disk = "/img/web.qcow2"
    write_free_lease(str(lease_dir), disk)
    stores = make_stores(lease_dir, clock, election, 2)
    one, two = stores
    uris = ["test:///hv1", "test:///hv2"]
    fleet = Fleet(uris)

    def apply(domains_of_two=()):
        for uri, store, domains in zip(uris, stores, ((), domains_of_two), strict=True):
            fleet.apply(HostSnapshot(Host(uri=uri, hostname=uri[-3:], state=ConnectionState.CONNECTED), domains,
                                     taken_at=clock(), leases=store.poll_snapshot()))

    def row():
        (status,) = [s for _, s in fleet.lease_rows() if s.name == sanlock_lease_name(disk)]
        return status

    try:
        apply()
        assert row().state is LeaseState.FREE or row().state is LeaseState.ORPHAN
        preads = counting_preads(monkeypatch)
        two.acquire(disk)  # two is not the reader, and no pass is due
        preads.clear()  # acquire reads the record it rewrites: the store's own work, not the view's
        (lease,) = [f for f in two.poll_snapshot().files if f.name == sanlock_lease_name(disk)]
        assert lease.held and lease.daemon_owner == 2 and lease.leader.owner_id == 2
        assert sanlock_lease_name(disk) in two.poll_snapshot().daemon_held
        (seen,) = one.poll_snapshot().files
        assert seen.held and seen.leader.owner_id == 2  # the other store of this process too
        apply((_running("web", disk),))
        assert row().state is LeaseState.HELD and row().owner_host_id == 2 and row().holder == "hv2/web"
        assert preads == []
        assert fresh_equal(two.poll_snapshot(), two.snapshot())
        two.release(disk)
        apply()
        assert row().state is not LeaseState.HELD
        (free,) = one.poll_snapshot().files
        assert not free.held and free.leader.is_free
        assert fresh_equal(one.poll_snapshot(), one.snapshot())
    finally:
        close_all(stores)


def test_a_lease_another_process_holds_shows_held_after_the_slow_interval(lease_dir, clock, election):
    disk = "/img/elsewhere.qcow2"
    write_free_lease(str(lease_dir), disk)
    (store,) = make_stores(lease_dir, clock, election, 1)
    script = textwrap.dedent(f"""
        import sys
        from virttui.locks.embedded import EmbeddedLeaseStore
        EmbeddedLeaseStore({str(lease_dir)!r}, 7).acquire({disk!r})
        print("HELD", flush=True)
        sys.stdin.read()  # until the test closes our stdin
    """)
    try:
        (lease,) = store.poll_snapshot().files
        assert not lease.held
        holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        try:
            assert holder.stdout.readline().strip() == "HELD"
            clock.advance(SLOW - 1)
            (lease,) = store.poll_snapshot().files
            assert not lease.held  # not looked at before the slow interval
            clock.advance(1)
            (lease,) = store.poll_snapshot().files
            assert lease.held and lease.leader.owner_id == 7 and lease.daemon_owner == 0
        finally:
            holder.stdin.close()
            holder.wait(timeout=60)
        clock.advance(SLOW)
        (lease,) = store.poll_snapshot().files  # died holding it: the file as it left it, no lock
        assert not lease.held and lease.leader.owner_id == 7 and not lease.leader.is_free
        assert fresh_equal(store.poll_snapshot(), store.snapshot())
    finally:
        close_all([store])


def test_files_that_change_between_passes_are_per_file_states_never_an_error_for_the_view(lease_dir, clock,
                                                                                         election):
    names = [os.path.basename(write_free_lease(str(lease_dir), f"/img/{n}")) for n in ("a", "b", "c", "d")]
    (store,) = make_stores(lease_dir, clock, election, 1)
    try:
        assert len(store.poll_snapshot().files) == 4
        os.truncate(lease_dir / names[0], 0)
        os.unlink(lease_dir / names[1])
        (lease_dir / names[2]).write_bytes(b"garbage" * 100)
        added = os.path.basename(write_free_lease(str(lease_dir), "/img/new"))
        os.symlink(lease_dir / names[3], lease_dir / ("f" * 32))
        (lease_dir / ("e" * 32)).mkdir()
        clock.advance(SLOW)
        view = store.poll_snapshot()
        by_name = {f.name: f for f in view.files}
        assert not view.error and view.complete
        assert by_name[names[0]].error and by_name[names[0]].leader is None
        assert names[1] not in by_name
        assert by_name[names[2]].error
        assert by_name[added].leader is not None and by_name[added].leader.is_free
        assert by_name[names[3]].leader is not None and not by_name[names[3]].error
        assert by_name["f" * 32].error == "unreadable: symbolic link"
        assert by_name["e" * 32].error == "not a regular file"
        assert fresh_equal(view, store.snapshot())
    finally:
        close_all([store])


def test_a_directory_that_goes_is_an_error_for_the_view_and_comes_back_when_it_does(lease_dir, clock, election):
    write_free_lease(str(lease_dir), "/img/a")
    stores = make_stores(lease_dir, clock, election, 2)
    try:
        assert all(len(store.poll_snapshot().files) == 1 for store in stores)
        moved = lease_dir.with_name("moved")
        os.rename(lease_dir, moved)
        clock.advance(SLOW)
        assert all(store.poll_snapshot().error for store in stores)
        os.rename(moved, lease_dir)
        clock.advance(SLOW)
        views = [store.poll_snapshot() for store in stores]
        assert all(not view.error and len(view.files) == 1 for view in views)
    finally:
        close_all(stores)


def test_cleanup_by_one_store_is_gone_from_every_view_at_the_next_poll(lease_dir, clock, election, monkeypatch):
    for index in range(5):
        write_free_lease(str(lease_dir), f"/img/stale-{index}")
    stores = make_stores(lease_dir, clock, election, 2)
    try:
        assert all(len(store.poll_snapshot().files) == 5 for store in stores)
        report = stores[1].cleanup()
        assert len(report.removed) == 5
        preads = counting_preads(monkeypatch)
        assert [store.poll_snapshot().files for store in stores] == [(), ()]
        assert preads == []
    finally:
        close_all(stores)


def test_the_lockspace_is_read_again_only_when_it_changed(lease_dir, clock, election, monkeypatch):
    stores = make_stores(lease_dir, clock, election, 2)
    try:
        assert [store.poll_snapshot().live_host_ids for store in stores] == [(1, 2), (1, 2)]
        opened = []
        real = EmbeddedLeaseStore.live_host_ids
        monkeypatch.setattr(EmbeddedLeaseStore, "live_host_ids", lambda self: opened.append(1) or real(self))
        for _ in range(5):
            clock.advance(2)
            for store in stores:
                store.poll_snapshot()
        assert opened == []
        late = EmbeddedLeaseStore(str(lease_dir), 9, election=election, monotonic=clock)
        late.join_lockspace()
        assert [store.poll_snapshot().live_host_ids for store in stores] == [(1, 2, 9), (1, 2, 9)]
        assert len(opened) == 1  # one read for every store of this process
        late.close()
    finally:
        close_all(stores)


def test_incremental_views_equal_a_fresh_read_after_random_changes(lease_dir, clock, election):
    """Property-style, with a fixed seed: store operations show at the next poll, changes made behind
    the stores' backs after the slow interval; either way the view is what snapshot() reads."""
    rng = random.Random(20261207)
    disks = [f"/img/vm-{index}.qcow2" for index in range(40)]
    for disk in disks[:20]:
        write_free_lease(str(lease_dir), disk, last_owner=rng.randint(0, 3))
    stores = make_stores(lease_dir, clock, election, 3, full=10 * SLOW)
    try:
        for store in stores:
            store.poll_snapshot()
        for _round in range(25):
            for _ in range(rng.randint(1, 6)):  # through the stores: seen at once
                store = rng.choice(stores)
                disk = rng.choice(disks)
                if store.holds(disk):
                    store.release(disk)
                elif not any(other.holds(disk) for other in stores):
                    with contextlib.suppress(LeaseConflict):  # a file made garbage below is no lease to take
                        store.acquire(disk)
            if rng.random() < 0.2:
                rng.choice(stores).cleanup()
            for store in stores:
                assert fresh_equal(store.poll_snapshot(), store.snapshot())
            time.sleep(0.01)  # changes after a pass: a later tick of the filesystem's clock
            for _ in range(rng.randint(0, 4)):  # behind their backs: seen after the slow interval
                disk = rng.choice(disks)
                name = sanlock_lease_name(disk)
                path = lease_dir / name
                if any(store.holds(disk) for store in stores):
                    continue  # a held lease's file is left to its holder
                change = rng.choice(("free", "remove", "truncate", "garbage", "owned"))
                if change == "free":
                    write_free_lease(str(lease_dir), disk, last_owner=rng.randint(0, 3))
                elif change == "remove" and path.exists():
                    path.unlink()
                elif change == "truncate" and path.exists():
                    os.truncate(path, rng.choice((0, 100, 4096)))
                elif change == "garbage":
                    path.write_bytes(rng.randbytes(rng.choice((512, 1024))))
                elif change == "owned" and path.exists():  # an owner that crashed: owned, not locked
                    with open(path, "r+b") as handle:
                        handle.write(pack_leader(space_name="__LIBVIRT__DISKS__", resource_name=name,
                                                 owner_id=rng.randint(1, 5), owner_generation=1, lver=3,
                                                 timestamp=12345))
            clock.advance(SLOW)
            for store in rng.sample(stores, len(stores)):
                assert fresh_equal(store.poll_snapshot(), store.snapshot())
    finally:
        close_all(stores)

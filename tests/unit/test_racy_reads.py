"""A lease file read within agent.RACY_SECONDS of its last change is read again at the next pass.

A filesystem keeps times to its own tick (an NFS server may keep whole seconds). A torn write read,
then put right within the same tick, leaves size, times and inode as they were: the fingerprint
matches and the incremental pass would keep the torn record. CoarseTimes plays such a filesystem.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from support.clock import WallClock

from virttui.locks import agent, embeddedfiles, embeddedpoll
from virttui.locks.embedded import EmbeddedLeaseStore, write_free_lease
from virttui.locks.leader import DELTA_DISK_MAGIC, DELTA_DISK_VERSION, pack_leader
from virttui.locks.model import LOCKSPACE_NAME
from virttui.locks.naming import sanlock_lease_name
from virttui.locks.readers import ReaderElection

SLOW = 30.0


class CoarseTimes:
    """The os module as seen on a filesystem whose timestamp tick is longer than the test: every
    write it makes leaves the times at the tick's start."""

    def __init__(self, tick: int) -> None:
        self._real = os
        self.tick = tick

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    def _coarse(self, info: os.stat_result) -> SimpleNamespace:
        return SimpleNamespace(st_mode=info.st_mode, st_ino=info.st_ino, st_dev=info.st_dev, st_size=info.st_size,
                               st_mtime=float(self.tick), st_ctime=float(self.tick),
                               st_mtime_ns=self.tick * 10**9, st_ctime_ns=self.tick * 10**9)

    def stat(self, *args: object, **kwargs: object) -> SimpleNamespace:
        return self._coarse(os.stat(*args, **kwargs))  # type: ignore[arg-type]

    def fstat(self, fd: int) -> SimpleNamespace:
        return self._coarse(os.fstat(fd))


def tear(path: Path) -> bytes:
    """Half a new header over the old one, in place; returns the first sector as it was."""
    good = path.read_bytes()[:512]
    with open(path, "r+b") as handle:
        handle.write(b"\xff" * 100)
    return good


def repair(path: Path, good: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, good, 0)
    finally:
        os.close(fd)


@pytest.fixture
def lease_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "leases"
    directory.mkdir()
    (directory / LOCKSPACE_NAME).write_bytes(pack_leader(
        space_name=LOCKSPACE_NAME, resource_name="cluster-a", owner_id=1, owner_generation=1, timestamp=5,
        magic=DELTA_DISK_MAGIC, version=DELTA_DISK_VERSION).ljust(1 << 20, b"\0"))
    return directory


def agent_pass(directory: Path, known: set[str]) -> tuple[dict, dict]:
    """One agent pass knowing `known`: (the file's entry, the whole result)."""
    result = agent.poll(str(directory), LOCKSPACE_NAME, False, known=known)
    (entry,) = result["files"]
    return entry, result


def test_agent_rereads_a_torn_write_repaired_within_one_timestamp_tick(lease_dir, monkeypatch):
    tick = int(time.time())
    monkeypatch.setattr(agent, "os", CoarseTimes(tick))
    monkeypatch.setattr(agent, "time", WallClock(tick + 0.5))
    name = sanlock_lease_name("/img/torn.qcow2")
    path = Path(write_free_lease(str(lease_dir), "/img/torn.qcow2"))
    assert path.name == name
    good = tear(path)
    torn, _ = agent_pass(lease_dir, set())
    assert torn["head"] == (b"\xff" * 100 + good[100:]).hex()
    repair(path, good)
    assert agent.fingerprint(name, agent.os.stat(path)) == torn["fp"].removesuffix(agent.RACY_MARK)  # tick hid it
    again, result = agent_pass(lease_dir, {torn["fp"]})
    assert result["reads"] == 1 and again["head"] == good.hex()


def test_agent_stops_rereading_once_the_write_is_older_than_the_window(lease_dir, monkeypatch):
    path = write_free_lease(str(lease_dir), "/img/settling.qcow2")
    written = os.stat(path).st_ctime
    clock = WallClock(written + 0.1)
    monkeypatch.setattr(agent, "time", clock)
    first, result = agent_pass(lease_dir, set())
    assert result["reads"] == 1 and first["fp"].endswith("~racy")
    clock.now = written + 1.0
    second, result = agent_pass(lease_dir, {first["fp"]})
    assert result["reads"] == 1  # still within the window: read again
    clock.now = written + agent.RACY_SECONDS + 0.1
    third, result = agent_pass(lease_dir, {second["fp"]})
    assert result["reads"] == 1 and not third["fp"].endswith("~racy")
    fourth, result = agent_pass(lease_dir, {third["fp"]})
    assert result["reads"] == 0 and "head" not in fourth


def test_agent_reads_a_file_dated_in_the_future_once(lease_dir):
    """A storage server whose clock runs ahead: its files are not racy for ever, nor read every pass."""
    path = write_free_lease(str(lease_dir), "/img/ahead.qcow2")
    ahead = time.time() + 3600
    os.utime(path, (ahead, ahead))
    first, result = agent_pass(lease_dir, set())
    assert result["reads"] == 1 and not first["fp"].endswith("~racy")
    _, result = agent_pass(lease_dir, {first["fp"]})
    assert result["reads"] == 0


def test_embedded_store_rereads_a_torn_write_repaired_within_one_timestamp_tick(lease_dir, clock, monkeypatch):
    tick = int(time.time())
    coarse = CoarseTimes(tick)
    monkeypatch.setattr(embeddedpoll, "os", coarse)
    monkeypatch.setattr(embeddedfiles, "os", coarse)
    monkeypatch.setattr(embeddedfiles, "time", WallClock(tick + 0.5))
    store = EmbeddedLeaseStore(str(lease_dir), 1, slow_interval=SLOW, full_interval=0.0,
                               election=ReaderElection(clock=clock), monotonic=clock)
    name = sanlock_lease_name("/img/torn.qcow2")
    try:
        path = Path(write_free_lease(str(lease_dir), "/img/torn.qcow2"))
        good = tear(path)
        (torn,) = [f for f in store.poll_snapshot().files if f.name == name]
        assert torn.error and torn.leader is None
        repair(path, good)
        clock.advance(SLOW)
        (repaired,) = [f for f in store.poll_snapshot().files if f.name == name]
        assert not repaired.error and repaired.leader is not None
    finally:
        store.release_all()
        store.close()


def test_a_racy_fingerprint_is_not_sent_and_a_same_contents_reread_changes_no_view(lease_dir, monkeypatch):
    """known() leaves racy fingerprints out (no listing could match them); reading the file again
    with the same contents does not move the cache's version (no view is rebuilt for it)."""
    from virttui.locks.dircache import LeaseDirCache

    path = write_free_lease(str(lease_dir), "/img/version.qcow2")
    written = os.stat(path).st_ctime
    clock = WallClock(written + 0.1)
    monkeypatch.setattr(agent, "time", clock)
    cache = LeaseDirCache()

    def decode(entry: dict, name: str) -> object:
        return entry.get("head", "")

    result = agent.poll(str(lease_dir), LOCKSPACE_NAME, False, known=cache.known())
    cache.update(result["files"], decode, now=1.0, wall=1.0, reads=result["reads"])  # type: ignore[arg-type]
    assert cache.known() == set() and cache.version == 1
    clock.now = written + agent.RACY_SECONDS + 0.1
    result = agent.poll(str(lease_dir), LOCKSPACE_NAME, False, known=cache.known())
    assert result["reads"] == 1
    cache.update(result["files"], decode, now=2.0, wall=2.0, reads=result["reads"])  # type: ignore[arg-type]
    assert cache.version == 1 and len(cache.known()) == 1

"""Lease cleanup and scanning work inside the lease directory they opened, never by a path.

Both the host agent (real sanlock, driven here through a stand-in libsanlock_client) and the
embedded store look every entry up relative to one directory fd and never follow a symlink
inside it. Each race below is staged from inside the "acquire" (sanlock_acquire, or the OFD
lock of the embedded store): a name or the directory itself is swapped for something else
while the cleanup holds a lease, and nothing outside the lease directory, nor anything whose
lease was not held, may be removed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from virttui.locks import agent, agentcleanup, ofd
from virttui.locks.embedded import EmbeddedLeaseStore, write_free_lease
from virttui.locks.model import LOCKSPACE_NAME
from virttui.locks.naming import sanlock_lease_name

_real_open = os.open  # the stand-in's own opens stay out of what the tests record


class FakeSanlock:
    """libsanlock_client as the agent calls it. Its acquire resolves the path it is given as the
    daemon does (symlinks followed), records which file that was, then runs `during_acquire`
    (once) while the lease counts as held."""

    def __init__(self, during_acquire: Callable[[str], None] | None = None) -> None:
        self.acquired: list[tuple[str, int, int]] = []  # (path given, dev, ino of what it led to)
        self.during_acquire = during_acquire
        self._lock = threading.Lock()

    def sanlock_register(self) -> int:
        return _real_open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)  # the agent closes it

    def sanlock_acquire(self, sock, pid, flags, count, args, opts) -> int:  # noqa: ANN001
        path = os.fsdecode(args[0].contents.disks[0].path)
        try:
            info = os.stat(path)
        except OSError as exc:
            return -exc.errno
        with self._lock:
            self.acquired.append((path, info.st_dev, info.st_ino))
            hook, self.during_acquire = self.during_acquire, None
        if hook is not None:
            hook(path)
        return 0

    def sanlock_release(self, sock, pid, flags, count, args) -> int:  # noqa: ANN001
        return 0


def run_agent_cleanup(monkeypatch: pytest.MonkeyPatch, directory: Path, names: list[str],
                      fake: FakeSanlock) -> dict[str, dict]:
    monkeypatch.setattr(agentcleanup.ctypes, "CDLL", lambda *args, **kwargs: fake)
    monkeypatch.setattr(agentcleanup, "WORKERS", 1)  # the staged race happens before the next file starts
    outcomes = list(agentcleanup.cleanup(str(directory), LOCKSPACE_NAME, names))
    assert not [o for o in outcomes if "fatal" in o], outcomes
    return {o["name"]: o for o in outcomes}


def lease(directory: Path, disk: str) -> tuple[str, Path]:
    """A free, acquirable lease of `disk` in directory: (name, path)."""
    path = Path(write_free_lease(str(directory), disk))
    return path.name, path


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """(lease directory, a directory outside it)."""
    inside, outside = tmp_path / "leases", tmp_path / "outside"
    inside.mkdir()
    outside.mkdir()
    return inside, outside


def opened_inodes(monkeypatch: pytest.MonkeyPatch) -> set[tuple[int, int]]:
    """Every file os.open opens from now on, as (dev, ino)."""
    seen: set[tuple[int, int]] = set()
    real_open = os.open

    def recording_open(path, flags, mode=0o777, *, dir_fd=None):  # noqa: ANN001, ANN202
        fd = real_open(path, flags, mode, dir_fd=dir_fd)
        info = os.fstat(fd)
        seen.add((info.st_dev, info.st_ino))
        return fd

    monkeypatch.setattr(os, "open", recording_open)
    return seen


def inode(path: Path) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino


# -- the host agent ------------------------------------------------------------------------------


def test_agent_never_opens_acquires_or_removes_a_symlinked_lease_or_its_target(monkeypatch, dirs):
    inside, outside = dirs
    stale, _ = lease(inside, "/img/stale")
    name, victim = lease(outside, "/img/victim")  # an acquirable lease, named as the link is
    os.symlink(victim, inside / name)
    before = victim.read_bytes()
    opened = opened_inodes(monkeypatch)
    fake = FakeSanlock()
    outcomes = run_agent_cleanup(monkeypatch, inside, [stale, name], fake)
    assert outcomes[stale]["removed"] is True
    assert outcomes[name]["removed"] is False and "symbolic link" in outcomes[name]["reason"]
    assert [os.path.basename(path) for path, _, _ in fake.acquired] == [stale]
    assert inode(victim) not in opened
    assert (inside / name).is_symlink() and victim.read_bytes() == before


@pytest.mark.parametrize("swap_for", ["symlink", "file"])
def test_agent_keeps_a_lease_name_swapped_during_the_acquire(monkeypatch, dirs, swap_for):
    """The name is replaced after sanlock took the lease of the original: the newcomer's lease was never
    held, so it stays, and so does the original (moved away meanwhile)."""
    inside, outside = dirs
    name, path = lease(inside, "/img/swapped")
    _, victim = lease(outside, "/img/victim")
    newcomer = outside / "newcomer"
    newcomer.write_bytes(path.read_bytes())  # looks just like the lease, but is another file
    newcomer_inode, original = inode(newcomer), path.read_bytes()

    def swap(_path: str) -> None:
        os.rename(path, outside / "original")
        if swap_for == "symlink":
            os.symlink(victim, path)
        else:
            os.rename(newcomer, path)

    outcomes = run_agent_cleanup(monkeypatch, inside, [name], FakeSanlock(swap))
    assert outcomes[name]["removed"] is False and outcomes[name]["reason"] == "replaced while checking"
    assert os.path.lexists(path) and (outside / "original").read_bytes() == original
    assert path.is_symlink() if swap_for == "symlink" else inode(path) == newcomer_inode
    assert victim.exists()


def test_agent_never_removes_outside_the_lease_directory_when_it_is_swapped_mid_run(monkeypatch, dirs, tmp_path):
    """The lease directory is renamed and a symlink to another directory holding leases of the same
    names put in its place: sanlock, handed paths, may take those leases, but no file there goes,
    nor one in the real directory whose lease was not the one taken."""
    inside, outside = dirs
    names = [lease(inside, f"/img/{i}")[0] for i in range(3)]
    victims = {name: lease(outside, f"/img/{i}")[1] for i, name in enumerate(names)}

    def swap_directory(_path: str) -> None:
        os.rename(inside, tmp_path / "moved")
        os.symlink(outside, inside)

    outcomes = run_agent_cleanup(monkeypatch, inside, names, FakeSanlock(swap_directory))
    assert all(victim.exists() for victim in victims.values())
    assert not [o for o in outcomes.values() if o["removed"]]
    assert {o["reason"] for o in outcomes.values()} == {"lease directory replaced while checking"}
    assert sorted(os.listdir(tmp_path / "moved")) == sorted(names)


def test_agent_scan_reads_the_directory_it_listed(monkeypatch, dirs, tmp_path):
    """A directory swapped for a symlink between listing and reading: the heads read are still
    those of the lease directory's files, never a same-named file elsewhere."""
    inside, outside = dirs
    name, _ = lease(inside, "/img/a")
    (outside / name).write_bytes(b"secret" * 100)
    real_locked = agent._locked_inodes

    def locked_then_swap():  # noqa: ANN202 - read between the listing and the files
        found = real_locked()
        os.rename(inside, tmp_path / "moved")
        os.symlink(outside, inside)
        return found

    monkeypatch.setattr(agent, "_locked_inodes", locked_then_swap)
    (entry,) = agent.scan(str(inside), LOCKSPACE_NAME, False)["files"]
    assert entry["name"] == name and entry["head"].startswith("10201506")  # PAXOS_DISK_MAGIC
    assert b"secret".hex() not in entry["head"]


def test_agent_opens_only_regular_files_and_the_directory(monkeypatch, dirs):
    """A fifo and a symlink in the directory are looked at (fstatat) and never opened; the directory
    itself is opened once per scan or cleanup."""
    inside, _ = dirs
    os.mkfifo(inside / ("f" * 32))
    os.symlink("/etc/passwd", inside / ("a" * 32))
    name, _ = lease(inside, "/img/a")
    opened: list[tuple[str, int | None]] = []
    real_open = os.open

    def recording_open(path, flags, mode=0o777, *, dir_fd=None):  # noqa: ANN001, ANN202
        opened.append((os.path.basename(path), dir_fd))
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", recording_open)
    errors = {f["name"]: f.get("error") for f in agent.scan(str(inside), LOCKSPACE_NAME, False)["files"]}
    assert errors == {"f" * 32: "not a regular file", "a" * 32: "symbolic link, not followed", name: None}
    assert [path for path, _ in opened] == ["leases", name] and opened[1][1] is not None
    opened.clear()
    outcomes = run_agent_cleanup(monkeypatch, inside, ["f" * 32, "a" * 32], FakeSanlock())
    assert outcomes["f" * 32]["reason"] == "not a regular file"
    assert [path for path, _ in opened] == ["leases"]


def test_agent_follows_a_symlinked_lease_directory_itself(monkeypatch, dirs, tmp_path):
    """The configured directory may be a symlink (to an NFS mount, say): it is followed, its entries are not."""
    inside, outside = dirs
    link = tmp_path / "configured"
    os.symlink(inside, link)
    stale, _ = lease(inside, "/img/stale")
    name, victim = lease(outside, "/img/victim")
    os.symlink(victim, inside / name)
    outcomes = run_agent_cleanup(monkeypatch, link, [stale, name], FakeSanlock())
    assert outcomes[stale]["removed"] is True and not (inside / stale).exists()
    assert outcomes[stale]["path"] == str(inside / stale)  # what sanlock is handed: the resolved path
    assert outcomes[name]["removed"] is False and victim.exists()
    assert {f["name"] for f in agent.scan(str(link), LOCKSPACE_NAME, False)["files"]} == {name}


def test_agent_reports_a_missing_lease_directory_once_before_asking_sanlock(monkeypatch, tmp_path):
    monkeypatch.setattr(agentcleanup.ctypes, "CDLL", lambda *args, **kwargs: pytest.fail("sanlock was asked"))
    missing = tmp_path / "missing"
    assert list(agentcleanup.cleanup(str(missing), LOCKSPACE_NAME, [sanlock_lease_name("/x")])) == [
        {"fatal": f"lease directory {missing}: No such file or directory"}]


# -- the embedded store --------------------------------------------------------------------------


@pytest.fixture
def store(dirs) -> Iterator[EmbeddedLeaseStore]:
    made = EmbeddedLeaseStore(str(dirs[0]), 1)
    made.join_lockspace()
    yield made
    made.release_all()


def lock_then(monkeypatch: pytest.MonkeyPatch, hook: Callable[[], None]) -> None:
    """The embedded store's acquire (the OFD lock) runs hook once, after taking the lock."""
    real_lock = ofd.try_lock
    pending = [hook]

    def try_lock(fd: int) -> bool:
        taken = real_lock(fd)
        if taken and pending:
            pending.pop()()
        return taken

    monkeypatch.setattr(ofd, "try_lock", try_lock)


def test_store_never_locks_or_removes_a_symlinked_lease_or_its_target(monkeypatch, store, dirs):
    inside, outside = dirs
    stale, _ = lease(inside, "/img/stale")
    name, victim = lease(outside, "/img/victim")
    os.symlink(victim, inside / name)
    before = victim.read_bytes()
    opened = opened_inodes(monkeypatch)
    report = store.cleanup()
    assert [o.name for o in report.removed] == [stale]
    (kept,) = report.kept
    assert kept.name == name and "symbolic link" in kept.reason
    assert inode(victim) not in opened
    assert (inside / name).is_symlink() and victim.read_bytes() == before


@pytest.mark.parametrize("swap_for", ["symlink", "file"])
def test_store_keeps_a_lease_name_swapped_during_the_acquire(monkeypatch, store, dirs, swap_for):
    inside, outside = dirs
    name, path = lease(inside, "/img/swapped")
    _, victim = lease(outside, "/img/victim")
    newcomer = outside / "newcomer"
    newcomer.write_bytes(path.read_bytes())
    newcomer_inode, original = inode(newcomer), path.read_bytes()

    def swap() -> None:
        os.rename(path, outside / "original")
        if swap_for == "symlink":
            os.symlink(victim, path)
        else:
            os.rename(newcomer, path)

    lock_then(monkeypatch, swap)
    report = store.cleanup([name])
    assert report.removed == ()
    assert [(o.name, o.reason) for o in report.kept] == [(name, "replaced while checking")]
    assert os.path.lexists(path) and (outside / "original").read_bytes() == original
    assert path.is_symlink() if swap_for == "symlink" else inode(path) == newcomer_inode
    assert victim.exists()


def test_store_never_removes_outside_the_lease_directory_when_it_is_swapped_mid_run(monkeypatch, store, dirs,
                                                                                     tmp_path):
    """The lock is taken on the open file, so the leases removed are those locked, in the directory
    opened: the same-named files the symlink now leads to all stay."""
    inside, outside = dirs
    names = [lease(inside, f"/img/{i}")[0] for i in range(3)]
    victims = [lease(outside, f"/img/{i}")[1] for i in range(3)]

    def swap_directory() -> None:
        os.rename(inside, tmp_path / "moved")
        os.symlink(outside, inside)

    lock_then(monkeypatch, swap_directory)
    report = store.cleanup(names)
    assert all(victim.exists() for victim in victims)
    assert sorted(o.name for o in report.removed) == sorted(names)
    assert os.listdir(tmp_path / "moved") == [LOCKSPACE_NAME]


def test_store_snapshot_reads_the_directory_it_listed(monkeypatch, store, dirs, tmp_path):
    inside, outside = dirs
    names = [lease(inside, f"/img/{i}")[0] for i in range(2)]
    for name in names:
        write_free_lease(str(outside), "/img/elsewhere")
        os.rename(outside / sanlock_lease_name("/img/elsewhere"), outside / name)  # same name, other leader
    real_is_locked = ofd.is_locked
    pending = [True]

    def is_locked_then_swap(fd: int) -> bool:  # asked of each file after reading it
        if pending and pending.pop():
            os.rename(inside, tmp_path / "moved")
            os.symlink(outside, inside)
        return real_is_locked(fd)

    monkeypatch.setattr(ofd, "is_locked", is_locked_then_swap)
    files = store.snapshot().files
    assert [f.leader.resource_name for f in files] == [f.name for f in files] == sorted(names)


def test_store_follows_a_symlinked_lease_directory_itself(dirs, tmp_path):
    inside, outside = dirs
    link = tmp_path / "configured"
    os.symlink(inside, link)
    store = EmbeddedLeaseStore(str(link), 1)
    store.join_lockspace()
    stale, _ = lease(inside, "/img/stale")
    name, victim = lease(outside, "/img/victim")
    os.symlink(victim, inside / name)
    assert {f.name for f in store.snapshot().files} == {stale, name}
    report = store.cleanup()
    assert [o.name for o in report.removed] == [stale] and not (inside / stale).exists()
    assert victim.exists() and (inside / name).is_symlink()

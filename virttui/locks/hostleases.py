"""Lease status and cleanup of a real host's sanlock lease directory.

The host-side work is done by virttui.locks.agent, run by
virttui.locks.agentrunner: in this process for a local host, as `python3 -c AGENT`
through the SSH session for a remote one, so a scan of any number of files is
one round trip. Leader records are decoded
here, and combined with what the host's sanlock daemon says it holds and
which host_ids are live in the lockspace.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import replace

from virttui.drivers.names import usable_name
from virttui.locks.agentrunner import AgentRunner, LeaseAgentError
from virttui.locks.candidates import name_refusal, refusal
from virttui.locks.dircache import LeaseDirCache
from virttui.locks.leader import DELTA_DISK_MAGIC, LeaderError, parse_leader
from virttui.locks.model import LOCKSPACE_NAME, CleanupOutcome, CleanupReport, LeaseDirSnapshot, LeaseFile, LockConfig
from virttui.locks.readers import ELECTION, ReaderElection
from virttui.locks.sanlockstatus import HostState, parse_client_status, parse_host_status, parse_lockspace_hosts

ProgressCallback = Callable[[int, int, CleanupOutcome], None]


def _lockspace_identity(entry: dict) -> str:
    """The owner name of the lockspace file's first delta lease, or "" (unreadable, never joined)."""
    try:
        record = parse_leader(bytes.fromhex(str(entry.get("head", ""))), magic=DELTA_DISK_MAGIC)
    except (LeaderError, ValueError):
        return ""
    return record.resource_name if record.checksum_ok else ""


class HostLeaseManager:
    """One real host's view of its sanlock (or virtlockd) lease directory.

    snapshot() reads every file, fresh (`leases status`, a dry run, a cleanup preview);
    poll_snapshot() reads only what can have changed (see docs/leases.md): what this host's daemon
    holds on every poll, leader records of files that changed at most every slow_interval, and
    only when this host is its directory's reader (readers.ELECTION).
    """

    def __init__(self, config: LockConfig, runner: AgentRunner, *, lockspace: str = LOCKSPACE_NAME,
                 slow_interval: float | None = None, full_interval: float | None = None,
                 election: ReaderElection = ELECTION, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.config = config
        self.runner = runner
        self.lockspace = lockspace
        self.manager = "lockd" if config.manager == "lockd" else "sanlock"
        self.directory = os.path.normpath(config.file_lockspace_dir if self.manager == "lockd"
                                          else config.disk_lease_dir)
        self.host_id = config.host_id if self.manager == "sanlock" else 0
        self._election = election
        self._slow_interval = slow_interval
        self._full_interval = full_interval
        self._clock = clock
        self._wall = wall
        self._private_key = ("private", id(self))
        self._key: Hashable = self._private_key
        self._identity_checked: float | None = None
        self._moves_seen = 0  # the directory's `moves` when this host last checked which directory it is
        self._built: tuple | None = None  # what self._view was built from
        self._view: LeaseDirSnapshot | None = None
        self.reads = 0  # sectors this host's agent read from the lease storage (benchmarks count them)

    @property
    def slow_interval(self) -> float:
        """Seconds between passes over the files: this host's own, else the console's policy."""
        return self._election.slow_interval if self._slow_interval is None else self._slow_interval

    @slow_interval.setter
    def slow_interval(self, seconds: float) -> None:
        self._slow_interval = seconds

    @property
    def full_interval(self) -> float:
        """Seconds within which every leader record is read again, changed or not."""
        return self._election.full_interval if self._full_interval is None else self._full_interval

    # -- fresh ---------------------------------------------------------------
    def snapshot(self) -> LeaseDirSnapshot:
        """Every file with its leader record, whether it is held, and which host_ids are live."""
        try:
            raw = self.runner.scan(self.directory, self.lockspace, self.manager == "sanlock")
        except (LeaseAgentError, ValueError) as exc:
            return self._error(f"lease directory {self.directory}: {exc}")
        try:
            if raw.get("error"):
                return self._error(f"lease directory {self.directory}: {raw['error']}")
            identity = next((_lockspace_identity(e) for e in raw.get("files", []) if e.get("name") == self.lockspace),
                            "")
            cache = self._cache_for(identity)
            with cache.lock:
                self.reads += len(raw.get("files", []))
                cache.update([e for e in raw.get("files", []) if e.get("name") != self.lockspace], self._decode,
                             now=self._clock(), wall=self._wall(), reads=len(raw.get("files", [])))
                return self._view_from(raw, cache, fresh=True)
        except (AttributeError, TypeError, ValueError, KeyError, OverflowError):  # a host's python3 answered nonsense
            return self._error(f"lease directory {self.directory}: the lease agent's answer is unreadable")

    # -- incremental ---------------------------------------------------------
    def poll_snapshot(self) -> LeaseDirSnapshot:
        """This poll's view, from what changed since the last (the result is the same object while
        nothing did)."""
        now = self._clock()
        sanlock = self.manager == "sanlock"
        # the first poll learns which directory this is before reading it: its readers may be elsewhere,
        # unless this is the console's one host
        first = sanlock and self._identity_checked is None
        alone = first and self._election.watched_hosts == 1
        identity_read = False
        for _attempt in range(2):  # a second round trip only when the directory turned out to be another one
            cache = self._election.cache(self._key, self)
            passing = (alone or not first) and self._election.claim(self._key, self) \
                and cache.due(now, self.slow_interval)
            # which directory this is: read with each pass, by the others only if the reader found it
            # moved (host 1's daemon restarted under a new name), else every full_interval
            identity_due = sanlock and not identity_read and (
                first or (passing and not cache.unread) or cache.moves != self._moves_seen
                or now - (self._identity_checked or 0.0) >= self.full_interval)
            with cache.lock:
                known = cache.known() if passing else None
                reread = cache.rotation(self._rotation_size(cache)) if passing and not cache.unread else []
            # names from the host's directory go back to it as arguments: only names a command may carry
            reread = [name for name in reread if usable_name(name) and "," not in name]
            try:
                raw = self.runner.poll(self.directory, self.lockspace, with_sanlock=self.manager == "sanlock",
                                       known=known, reread=reread, identity=identity_due,
                                       with_heads=self.manager == "sanlock", budget=self._election.read_budget,
                                       rate=self._election.read_rate)
            except (LeaseAgentError, OSError, ValueError) as exc:
                self._election.release(self, self._key)  # another host reads at its next poll
                return self._error(f"lease directory {self.directory}: {exc}")
            try:
                self.reads += int(raw.get("reads") or 0)
                if raw.get("error"):
                    self._election.release(self, self._key)
                    return self._error(f"lease directory {self.directory}: {raw['error']}")
                if passing:
                    with cache.lock:
                        cache.update(raw.get("files", []), self._decode, now=now, wall=self._wall(),
                                     reads=int(raw.get("reads") or 0))
                if identity_due:
                    first, identity_read = False, True
                    self._identity_checked, self._moves_seen = now, cache.moves
                    self._rekey(_lockspace_identity(raw.get("lockspace_head") or {}), read_with_it=passing)
                    cache = self._election.cache(self._key, self)
                    if cache.last_pass is None:
                        continue  # nobody has read this directory yet: read it now, not a poll later
                with cache.lock:
                    return self._view_from(raw, cache)
            except (AttributeError, TypeError, ValueError, KeyError, OverflowError):
                self._election.release(self, self._key)
                return self._error(f"lease directory {self.directory}: the lease agent's answer is unreadable")
        with cache.lock:
            return self._view_from(raw, cache)  # the reader is another host, whose pass is still to come

    def close(self) -> None:
        """The host went away: another host reads its directories from now on."""
        self._election.leave(self)

    def _rekey(self, identity: str, *, read_with_it: bool = False) -> bool:
        """The cache this host's view comes from: shared by every host that names this path and sees
        the same lockspace (its first delta lease's owner), private without that evidence.
        read_with_it: the private cache's files were read in the run that found this identity."""
        key: Hashable = ("sanlock", self.directory, self.lockspace, identity) if identity else self._private_key
        if key == self._key:
            return False
        if self._key != self._private_key:  # the others of that directory check theirs at their next poll
            self._election.cache(self._key).moves += 1
        elif read_with_it:  # those files are this key's, if nobody else has a cache of it
            self._election.adopt(key, self._election.cache(self._key), self)
        self._election.leave(self, self._key)
        self._key = key
        self._built = None
        self._moves_seen = self._election.cache(key, self).moves
        return True

    def _cache_for(self, identity: str) -> LeaseDirCache:
        if self.manager == "sanlock":
            self._rekey(identity)
            self._identity_checked = self._clock()
        return self._election.cache(self._key, self)

    def _rotation_size(self, cache: LeaseDirCache) -> int:
        """How many leader records a pass reads whatever their fingerprint: every one within full_interval."""
        if not cache.files or self.full_interval <= 0:
            return 0
        return math.ceil(len(cache.files) * self.slow_interval / self.full_interval)

    # -- building a view -----------------------------------------------------
    def _decode(self, entry: dict, name: str) -> LeaseFile:
        """A file as read, its `held` left to each poll."""
        path = os.path.join(self.directory, name)
        size = int(entry.get("size") or 0)
        if entry.get("error"):
            return LeaseFile(name=name, path=path, size=size, error=str(entry["error"]))
        if self.manager == "lockd":
            return LeaseFile(name=name, path=path, size=size)
        try:
            record = parse_leader(bytes.fromhex(str(entry.get("head", ""))))
        except (LeaderError, ValueError) as exc:
            return LeaseFile(name=name, path=path, size=size, error=str(exc))
        return LeaseFile(name=name, path=path, size=size, leader=record)

    def _view_from(self, raw: dict, cache: LeaseDirCache, *, fresh: bool = False) -> LeaseDirSnapshot:
        if self.manager == "lockd":
            return self._lockd_view(raw, cache)
        daemon = parse_client_status(raw.get("status") or "")
        hosts, hosts_problem = self._lockspace_hosts(raw)
        mine = frozenset(key.partition(":")[2] for key in daemon.resources if key.startswith(self.lockspace + ":"))
        # Where the daemon did not answer, the leader record decides: a lease it says is owned counts as held.
        unsure = (bool(raw.get("status_error")), hosts is None)
        status_problem = f"client status: {raw['status_error']}" if raw.get("status_error") else ""
        warnings = "; ".join(filter(None, (status_problem, hosts_problem)))
        # a host's renewal timestamp moves every few seconds and changes nothing shown: not an input
        states = None if hosts is None else sorted((h, state.generation, state.state) for h, state in hosts.items())
        inputs = (self._key, cache.version, cache.unread, mine, states, unsure, warnings)
        if not fresh and self._view is not None and inputs == self._built:
            if self._view.as_of != cache.as_of:  # a pass that found nothing new: equal, so nothing is rebuilt
                self._view = replace(self._view, as_of=cache.as_of)
            return self._view
        files = [self._held_file(cached.file, mine, hosts or {}, unsure) for _, cached in sorted(cache.files.items())]
        # held by this host's daemon, its file not read yet (a guest started since the last pass)
        files.extend(LeaseFile(name=name, path=os.path.join(self.directory, name), held=True,
                               daemon_owner=self.host_id) for name in sorted(mine - cache.files.keys()))
        # Without the daemon's answers nothing here can say what is held: the error shows, and a dry
        # run keeps every file (a real cleanup asks sanlock itself, file by file).
        view = LeaseDirSnapshot(
            directory=self.directory, host_id=self.host_id, auto_disk_leases=self.config.auto_disk_leases,
            lockspace=self.lockspace, files=tuple(files),
            live_host_ids=tuple(sorted(h for h, state in (hosts or {}).items() if state.holding)),
            failing_host_ids=tuple(sorted(h for h, state in (hosts or {}).items() if state.state == "FAIL")),
            lockspace_identity=self._key[3] if self._key != self._private_key else "",  # type: ignore[index]
            error=f"sanlock daemon on this host: {warnings}" if warnings else "",
            daemon_held=None if unsure[0] else mine, complete=cache.last_pass is not None and not cache.unread,
            as_of=cache.as_of,
        )
        self._built, self._view = inputs, view
        return view

    def _lockspace_hosts(self, raw: dict) -> tuple[dict[int, HostState] | None, str]:
        """Each host_id's state in the lockspace (`gets -h 1`; from `host_status` timestamps where
        that failed), or None and what went wrong. Hosts "not ready" (joined moments ago) are None
        without a complaint: it passes in seconds, and meanwhile owned leases count as held."""
        if raw.get("hosts") is not None and not raw.get("hosts_error"):
            joined, hosts = parse_lockspace_hosts(raw["hosts"], self.lockspace)
            return hosts, "" if joined else f"gets: lockspace {self.lockspace} is not joined"
        if raw.get("host_status_error") or raw.get("host_status") is None:
            why = raw.get("host_status_error") or raw.get("hosts_error") or "no answer"
            return None, f"host_status: {why}"
        return {host_id: HostState(0, timestamp, "LIVE" if timestamp else "FREE")
                for host_id, timestamp in parse_host_status(raw["host_status"]).items()}, ""

    def _held_file(self, lease: LeaseFile, mine: frozenset[str], hosts: dict[int, HostState],
                   unsure: tuple[bool, bool] = (False, False)) -> LeaseFile:
        """unsure: (`client status` failed, the lockspace's hosts are unknown): what this host holds,
        or which hosts are live, is then unknown, and an owned leader record is taken as held.
        Another host's lease is held while sanlock sees its owner holding (not DEAD or FREE) in the
        generation that took it: a lease from before the owner rejoined (a crash and restart) is not."""
        record = lease.leader
        if record is None:
            return lease
        if lease.name in mine:
            return replace(lease, held=True, daemon_owner=self.host_id)
        own = record.owner_id == self.host_id
        owner = hosts.get(record.owner_id)
        owner_holds = owner is not None and owner.holding and record.owner_generation >= owner.generation
        held = record.timestamp != 0 and ((not own and (owner_holds or unsure[1])) or (own and unsure[0]))
        return replace(lease, held=True) if held else lease

    def _lockd_view(self, raw: dict, cache: LeaseDirCache) -> LeaseDirSnapshot:
        """virtlockd's file lockspace: sha256-named files, held while the kernel lock table has their inode."""
        locked = frozenset(tuple(lock) for lock in raw.get("locks", []))
        inputs = (self._key, cache.version, locked)
        if self._view is not None and inputs == self._built:
            if self._view.as_of != cache.as_of:
                self._view = replace(self._view, as_of=cache.as_of)
            return self._view
        files = tuple(replace(cached.file, held=cached.inode in locked) if cached.inode else cached.file
                      for _, cached in sorted(cache.files.items()))
        view = LeaseDirSnapshot(directory=self.directory, host_id=0, auto_disk_leases=self.config.auto_disk_leases,
                                lockspace="", files=files, manager="lockd",
                                devices_elsewhere=self.config.device_lockspaces,
                                complete=cache.last_pass is not None, as_of=cache.as_of)
        self._built, self._view = inputs, view
        return view

    def _error(self, message: str) -> LeaseDirSnapshot:
        return LeaseDirSnapshot(directory=self.directory, host_id=self.host_id, lockspace=self.lockspace,
                                auto_disk_leases=self.config.auto_disk_leases, error=message, manager=self.manager)

    def cleanup(self, names: Iterable[str] | None = None, *, dry_run: bool = False,
                progress: ProgressCallback | None = None) -> CleanupReport:
        """Remove each lease file only while this host holds its lease (virt-sanlock-cleanup's rule)."""
        if self.manager != "sanlock":
            raise LeaseAgentError("cleanup removes sanlock leases; virtlockd's files are reused, not cleaned")
        if dry_run:
            snapshot = self.snapshot()
            if names is None:
                if snapshot.error and not snapshot.files:
                    raise LeaseAgentError(snapshot.error)
                names = [f.name for f in snapshot.files]  # the snapshot leaves the lockspace out
            return self._predict(snapshot, [n for n in names if n != self.lockspace], progress)
        todo = None if names is None else [n for n in names if n != self.lockspace]
        total = 0 if todo is None else len(todo)
        outcomes = []
        if todo is not None:  # never sent to the host: a name like "--all" or one that isn't UTF-8
            refused = {name: why for name in todo if (why := name_refusal(name))}
            for name, why in refused.items():
                outcomes.append(CleanupOutcome(name, os.path.join(self.directory, name), False, why))
                if progress is not None:
                    progress(len(outcomes), total, outcomes[-1])
            todo = [n for n in todo if n not in refused]
        for raw_outcome in self.runner.cleanup(self.directory, self.lockspace, todo) if todo != [] else ():
            if "fatal" in raw_outcome:
                raise LeaseAgentError(str(raw_outcome["fatal"]))
            if "total" in raw_outcome:
                total = raw_outcome["total"]
                continue
            outcome = CleanupOutcome(str(raw_outcome["name"]), str(raw_outcome["path"]),
                                     bool(raw_outcome["removed"]), str(raw_outcome.get("reason", "")))
            outcomes.append(outcome)
            if progress is not None:
                progress(len(outcomes), total, outcome)
        return CleanupReport(lockspace=self.lockspace, outcomes=tuple(outcomes))

    def _predict(self, snapshot: LeaseDirSnapshot, names: list[str],
                 progress: ProgressCallback | None) -> CleanupReport:
        """A dry run changes nothing on disk, not even a lease's version: predict from the leader records."""
        by_name = {f.name: f for f in snapshot.files}
        outcomes = []
        for index, name in enumerate(names, 1):
            lease = by_name.get(name)
            path = os.path.join(self.directory, name)
            if lease is None:
                outcome = CleanupOutcome(name, path, False, "vanished")
            elif snapshot.error:
                outcome = CleanupOutcome(name, path, False, f"unknown, {snapshot.error}")
            elif lease.error:
                outcome = CleanupOutcome(name, path, False, f"not a lease: {lease.error}")
            elif why := refusal(name, lease.leader, self.lockspace, lease.size):
                outcome = CleanupOutcome(name, path, False, why)
            elif lease.held:
                outcome = CleanupOutcome(name, path, False, "lease is held")
            else:
                outcome = CleanupOutcome(name, path, True)
            outcomes.append(outcome)
            if progress is not None:
                progress(index, len(names), outcome)
        return CleanupReport(lockspace=self.lockspace, outcomes=tuple(outcomes))

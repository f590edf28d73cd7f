"""Lease status and cleanup of a real host's sanlock lease directory.

The host-side work is done by virttui.locks.agent: in this process for a local
host, as `python3 -c AGENT` through the SSH session for a remote one, so a
scan of any number of files is one round trip. Leader records are decoded
here, and combined with what the host's sanlock daemon says it holds and
which host_ids are live in the lockspace.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from virttui.locks.leader import LeaderError, parse_leader
from virttui.locks.model import LOCKSPACE_NAME, CleanupOutcome, CleanupReport, LeaseDirSnapshot, LeaseFile, LockConfig
from virttui.locks.sanlockstatus import parse_client_status, parse_host_status

ProgressCallback = Callable[[int, int, CleanupOutcome], None]
AGENT_SOURCE = (Path(__file__).parent / "agent.py").read_text(encoding="utf-8")
CLEANUP_CHUNK = 200  # names per remote agent run: progress arrives chunk by chunk


class LeaseAgentError(OSError):
    """The host's lease directory or sanlock daemon could not be used; str() is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.strerror = message

    def __str__(self) -> str:
        return self.strerror


class AgentRunner:
    """Runs agent commands on the host: in-process (local) or through a transport (remote)."""

    def __init__(self, transport=None, python: str = "python3") -> None:  # noqa: ANN001 - Transport | None
        self.transport = transport
        self.python = python

    def scan(self, directory: str, lockspace: str, with_sanlock: bool) -> dict:
        if self.transport is None:
            from virttui.locks import agent

            return agent.scan(directory, lockspace, with_sanlock)
        argv = [self.python, "-c", AGENT_SOURCE, "scan", directory, lockspace] + (["sanlock"] if with_sanlock else [])
        return json.loads(self._run(argv) or "{}")

    def cleanup(self, directory: str, lockspace: str, names: list[str]) -> Iterable[dict]:
        if self.transport is None:
            from virttui.locks import agent

            yield from agent.cleanup(directory, lockspace, names)
            return
        for start in range(0, len(names), CLEANUP_CHUNK):
            chunk = names[start:start + CLEANUP_CHUNK]
            out = self._run([self.python, "-c", AGENT_SOURCE, "cleanup", directory,
                             lockspace, *chunk])
            for line in out.splitlines():
                if line.strip():
                    yield json.loads(line)

    def _run(self, argv: list[str]) -> str:
        from virttui.drivers.errors import DriverError

        try:
            result = self.transport.run(argv, timeout=120)
        except DriverError as exc:
            raise LeaseAgentError(str(exc)) from None
        if result.returncode == 127:
            raise LeaseAgentError("python3 is needed on the host for lease status and cleanup")
        if result.returncode != 0:
            raise LeaseAgentError(f"lease agent failed: {result.stderr.strip().splitlines()[-1:] or result.returncode}")
        return result.stdout


class HostLeaseManager:
    """One real host's view of its sanlock lease directory."""

    def __init__(self, config: LockConfig, runner: AgentRunner, *, lockspace: str = LOCKSPACE_NAME) -> None:
        self.config = config
        self.runner = runner
        self.lockspace = lockspace
        self.manager = "lockd" if config.manager == "lockd" else "sanlock"
        self.directory = os.path.normpath(config.file_lockspace_dir if self.manager == "lockd"
                                          else config.disk_lease_dir)
        self.host_id = config.host_id if self.manager == "sanlock" else 0

    def snapshot(self) -> LeaseDirSnapshot:
        """Every file with its leader record, whether it is held, and which host_ids are live."""
        try:
            raw = self.runner.scan(self.directory, self.lockspace, self.manager == "sanlock")
        except (LeaseAgentError, ValueError) as exc:
            return self._error(f"lease directory {self.directory}: {exc}")
        if raw.get("error"):
            return self._error(f"lease directory {self.directory}: {raw['error']}")
        if self.manager == "lockd":
            return self._lockd_snapshot(raw)
        daemon = parse_client_status(raw.get("status") or "")
        live = parse_host_status(raw.get("host_status") or "")
        live_ids = tuple(sorted(h for h, ts in live.items() if ts))
        mine = {key.partition(":")[2] for key in daemon.resources if key.startswith(self.lockspace + ":")}
        files = []
        for entry in raw.get("files", []):
            name = str(entry.get("name", ""))
            if name == self.lockspace:
                continue
            files.append(self._lease_file(entry, name, mine, live_ids))
        warnings = raw.get("status_error") or ""
        return LeaseDirSnapshot(
            directory=self.directory, host_id=self.host_id, auto_disk_leases=self.config.auto_disk_leases,
            lockspace=self.lockspace, files=tuple(files), live_host_ids=live_ids,
            error=f"sanlock daemon on this host: {warnings}" if warnings else "",
        )

    def _lease_file(self, entry: dict, name: str, mine: set[str], live: tuple[int, ...]) -> LeaseFile:
        path = os.path.join(self.directory, name)
        if entry.get("error"):
            return LeaseFile(name=name, path=path, size=int(entry.get("size") or 0), error=str(entry["error"]))
        try:
            record = parse_leader(bytes.fromhex(str(entry.get("head", ""))))
        except (LeaderError, ValueError) as exc:
            return LeaseFile(name=name, path=path, size=int(entry.get("size") or 0), error=str(exc))
        held = name in mine or (record.timestamp != 0 and record.owner_id in live and record.owner_id != self.host_id)
        return LeaseFile(name=name, path=path, size=int(entry.get("size") or 0), leader=record, held=held)

    def _lockd_snapshot(self, raw: dict) -> LeaseDirSnapshot:
        """virtlockd's file lockspace: sha256-named files, held while the kernel lock table has their inode."""
        locked = {tuple(lock) for lock in raw.get("locks", [])}
        files = []
        for entry in raw.get("files", []):
            name = str(entry.get("name", ""))
            path = os.path.join(self.directory, name)
            key = (*entry.get("dev", (0, 0)), entry.get("ino", 0))
            files.append(LeaseFile(name=name, path=path, size=int(entry.get("size") or 0),
                                   error=str(entry.get("error") or ""), held=key in locked))
        return LeaseDirSnapshot(directory=self.directory, host_id=0, auto_disk_leases=True, lockspace="",
                                files=tuple(files), manager="lockd")

    def _error(self, message: str) -> LeaseDirSnapshot:
        return LeaseDirSnapshot(directory=self.directory, host_id=self.host_id, lockspace=self.lockspace,
                                auto_disk_leases=self.config.auto_disk_leases, error=message, manager=self.manager)

    def cleanup(self, names: Iterable[str] | None = None, *, dry_run: bool = False,
                progress: ProgressCallback | None = None) -> CleanupReport:
        """Remove each lease file only while this host holds its lease (virt-sanlock-cleanup's rule)."""
        if self.manager != "sanlock":
            raise LeaseAgentError("cleanup removes sanlock leases; virtlockd's files are reused, not cleaned")
        if names is None:
            raw = self.runner.scan(self.directory, self.lockspace, False)
            if raw.get("error"):
                raise LeaseAgentError(f"lease directory {self.directory}: {raw['error']}")
            names = [str(e["name"]) for e in raw.get("files", [])]
        todo = [n for n in names if n != self.lockspace]
        if dry_run:
            return self._predict(todo, progress)
        outcomes = []
        for index, raw_outcome in enumerate(self.runner.cleanup(self.directory, self.lockspace, todo), 1):
            if "fatal" in raw_outcome:
                raise LeaseAgentError(str(raw_outcome["fatal"]))
            outcome = CleanupOutcome(str(raw_outcome["name"]), str(raw_outcome["path"]),
                                     bool(raw_outcome["removed"]), str(raw_outcome.get("reason", "")))
            outcomes.append(outcome)
            if progress is not None:
                progress(index, len(todo), outcome)
        return CleanupReport(lockspace=self.lockspace, outcomes=tuple(outcomes))

    def _predict(self, names: list[str], progress: ProgressCallback | None) -> CleanupReport:
        """A dry run changes nothing on disk, not even a lease's version: predict from the leader records."""
        by_name = {f.name: f for f in self.snapshot().files}
        outcomes = []
        for index, name in enumerate(names, 1):
            lease = by_name.get(name)
            path = os.path.join(self.directory, name)
            if lease is None:
                outcome = CleanupOutcome(name, path, False, "vanished")
            elif lease.error or lease.leader is None:
                outcome = CleanupOutcome(name, path, False, f"not a lease: {lease.error}")
            elif lease.held:
                outcome = CleanupOutcome(name, path, False, "lease is held")
            else:
                outcome = CleanupOutcome(name, path, True)
            outcomes.append(outcome)
            if progress is not None:
                progress(index, len(names), outcome)
        return CleanupReport(lockspace=self.lockspace, outcomes=tuple(outcomes))

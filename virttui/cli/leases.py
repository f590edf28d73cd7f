"""`virttui leases status|cleanup`: lease status of every host's directory, and a cleanup as
virt-sanlock-cleanup's, of each shared directory once."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from virttui.cli.hosts import open_hosts
from virttui.cli.output import OutputError, UsageError, _printable
from virttui.drivers.base import Driver
from virttui.drivers.model import ConnectionState, HostSnapshot
from virttui.runtime.pollonce import poll_once

if TYPE_CHECKING:
    from virttui.locks.model import CleanupOutcome


def _lease_hosts(drivers: list[Driver]) -> tuple[list[tuple[Driver, HostSnapshot]], list[str]]:
    """The hosts reached, each with its poll, and a line for each host that was not: one unreachable
    host is reported (exit 1, like `status`), and the others' leases are still shown or cleaned."""
    pairs, unreachable = [], []
    for driver in drivers:
        snap = poll_once(driver)
        if snap.host.state is not ConnectionState.CONNECTED:
            unreachable.append(snap.host.last_error)
            continue
        pairs.append((driver, snap))
    return pairs, unreachable


def _lease_fleet(pairs: list[tuple[Driver, HostSnapshot]]):  # noqa: ANN202 - virttui.fleet.Fleet
    """The hosts' views of their lease directories, grouped by the directory they really share."""
    from virttui.fleet import Fleet

    fleet = Fleet([driver.uri for driver, _ in pairs])
    for _, snap in pairs:
        fleet.apply(snap)
    return fleet


def _lock_config_problems(pairs: list[tuple[Driver, HostSnapshot]]) -> list[str]:
    """Warnings about a host's lock configuration (a malformed qemu-sanlock.conf names file and line):
    without them, a host whose config can't be read would look like one without leases."""
    return [f"{_printable(snap.host.label)}: {_printable(warning)}"
            for _, snap in pairs for warning in snap.host.warnings
            if warning.startswith(("lock configuration", "cannot read the libvirt lock configuration"))]


def cmd_leases_status(args: argparse.Namespace) -> int:
    with open_hosts(args) as (drivers, _, _):
        pairs, errors = _lease_hosts(drivers)
        fleet = _lease_fleet(pairs)
        rows = fleet.lease_rows()
        errors += [view.error for views in fleet.lease_dirs().values() for _, view in views if view.error]
        errors += _lock_config_problems(pairs)
    if args.json:
        print(json.dumps([
            {"name": s.name, "path": s.path, "disk": s.disk, "state": s.state.value,
             "owner_host_id": s.owner_host_id, "domains": list(s.domains)}
            for _, s in rows
        ], indent=2))
    else:
        if not fleet.lease_dirs():
            print("no host has a lease directory")
        for _, s in rows:
            owner = str(s.owner_host_id) if s.owner_host_id else "-"
            print(f"{s.state.value:<9} {_printable(s.name)}  owner {owner:<3} {_printable(s.disk) or '?'}  "
                  f"{_printable(', '.join(s.domains)) or '-'}")
    for error in errors:
        print(f"virttui: {_printable(error)}", file=sys.stderr)
    return 1 if errors else 0


def cmd_leases_cleanup(args: argparse.Namespace) -> int:
    """Every host's lease directory (as `leases status` shows them), a shared one once."""
    outcomes: list[CleanupOutcome] = []
    errors: list[str] = []
    with open_hosts(args) as (drivers, _, _):
        pairs, unreachable = _lease_hosts(drivers)
        problems = [_printable(line) for line in unreachable] + _lock_config_problems(pairs)
        for problem in problems:
            print(f"virttui: {problem}", file=sys.stderr)
        managers = [(driver.uri, driver.lease_manager()) for driver, _ in pairs]
        managers = [(uri, m) for uri, m in managers if m is not None]
        if not managers and not unreachable:
            raise UsageError("no host with a sanlock lease directory"
                             + (" (see the lock configuration errors above)" if problems else ""))
        try:
            _clean_each_directory(args, managers, _lease_fleet(pairs), outcomes, errors)
        except KeyboardInterrupt:  # what was removed until then is still reported
            _report_cleanup(args, outcomes, [*errors, "interrupted"], problems, interrupted=True)
            return 130
    _report_cleanup(args, outcomes, errors, problems)
    return 1 if problems or errors else 0


def _clean_each_directory(args: argparse.Namespace, managers: list, fleet,  # noqa: ANN001 - virttui.fleet.Fleet
                          outcomes: list[CleanupOutcome], errors: list[str]) -> None:
    """Outcomes and per-directory errors are appended as they come: an interruption keeps them."""
    cleaned: set[str] = set()  # a directory hosts share is cleaned once, from its first host
    for uri, manager in managers:
        directory = fleet.lease_dir_of(uri) or f"{manager.directory} · {uri}"
        if directory in cleaned:
            continue
        cleaned.add(directory)
        lockspace = manager.lockspace

        def record(_index: int, _total: int, outcome: CleanupOutcome, lockspace: str = lockspace) -> None:
            """Each file as it is done: printed like virt-sanlock-cleanup (a cron log shows progress),
            and kept, so a cleanup that stops part way still reports what it removed."""
            outcomes.append(outcome)
            if args.quiet or args.json:
                return
            resource = f"{lockspace}:{outcome.name}:{outcome.path}:0"
            verdict = "PASS" if outcome.removed else "FAIL"
            print(f"Cleanup: {_printable(resource)} {verdict}{' (dry run)' if args.dry_run else ''}", flush=True)

        try:
            manager.cleanup(dry_run=args.dry_run, progress=record)
        except (BrokenPipeError, OutputError):
            raise  # the output is gone: no more files removed that nobody would see reported
        except OSError as exc:  # LeaseDirError, LeaseAgentError: one line naming the directory; the next goes on
            errors.append(exc.strerror or str(exc))


def _report_cleanup(args: argparse.Namespace, outcomes: list[CleanupOutcome], errors: list[str],
                    host_problems: list[str], *, interrupted: bool = False) -> None:
    """The JSON result (host problems, already said on stderr, go in its errors too) and the errors."""
    if args.json and not args.quiet:
        result: dict = {"removed": [o.name for o in outcomes if o.removed],
                        "kept": [{"name": o.name, "reason": o.reason} for o in outcomes if not o.removed]}
        if args.dry_run:
            result["dry_run"] = True
        if interrupted:
            result["interrupted"] = True
        if host_problems or errors:
            result["errors"] = host_problems + errors
        try:
            print(json.dumps(result, indent=2), flush=True)
        except OutputError:  # written only now: what was removed must not be lost with it
            removed = " ".join(result["removed"]) or "nothing"
            print(f"virttui: the JSON result could not be written; removed: {removed}", file=sys.stderr)
            raise
    for error in errors:
        print(f"virttui: {_printable(error)}", file=sys.stderr)

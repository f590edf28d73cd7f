"""Command line: the console, `status`, and `leases status|cleanup`.

Every failure ends as one clear line on stderr and a non-zero exit, never a
traceback; tracebacks of real bugs go to the log file.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO, cast

from virttui import __version__
from virttui.collector import resume_collection
from virttui.config import Config, ConfigError, load_config
from virttui.drivers.base import Driver
from virttui.drivers.model import ConnectionState, HostSnapshot
from virttui.pollonce import poll_once

if TYPE_CHECKING:
    from virttui.locks.model import CleanupOutcome

log = logging.getLogger("virttui")


def _add_connect(parser: argparse.ArgumentParser, *, top: bool) -> None:
    default = None if top else argparse.SUPPRESS
    # the subcommand's own dest: argparse would let `virttui -c A status -c B` replace A by B (merged in main)
    parser.add_argument("-c", "--connect", metavar="URI", action="append", default=default,
                        dest="connect" if top else "sub_connect",
                        help="a host's libvirt URI; repeat for several hosts")
    parser.add_argument("--demo", action="store_true", default=False if top else argparse.SUPPRESS,
                        help="use the embedded three-host demo")
    parser.add_argument("--config", metavar="FILE", default=None if top else argparse.SUPPRESS,
                        help="config file (default ~/.config/virttui/config.toml)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="virttui", description="Keyboard-driven console for libvirt hosts.")
    parser.add_argument("--version", action="version", version=f"virttui {__version__}")
    _add_connect(parser, top=True)
    parser.add_argument("--poll-interval", type=float, metavar="SECONDS", help="seconds between polls (default 2)")
    parser.add_argument("--log", metavar="FILE", help="log file (default ~/.local/state/virttui/virttui.log)")
    parser.add_argument("--debug", action="store_true", help="show the log live in a pane of the console")
    sub = parser.add_subparsers(dest="command")
    status = sub.add_parser("status", help="poll every host once and print its domains")
    _add_connect(status, top=False)
    status.add_argument("--json", action="store_true", help="print JSON")
    top = sub.add_parser("top", help="per-domain stats, streamed (like virt-top)")
    _add_connect(top, top=False)
    top.add_argument("--batch", action="store_true", required=True,
                     help="print to stdout instead of a screen (the only mode; the console is `virttui`)")
    fmt = top.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV: one header line, then one row per domain")
    fmt.add_argument("--json", action="store_true", help="JSON lines: one object per iteration")
    top.add_argument("-d", "--delay", type=float, default=None, metavar="SECONDS",
                     help="seconds between iterations (default: the poll interval)")
    top.add_argument("-n", "--iterations", type=int, default=None, metavar="N", help="stop after N iterations")
    leases = sub.add_parser("leases", help="disk lease status and cleanup")
    leases_sub = leases.add_subparsers(dest="leases_command", required=True)
    lstatus = leases_sub.add_parser("status", help="the status of every lease file")
    _add_connect(lstatus, top=False)
    lstatus.add_argument("--json", action="store_true", help="print JSON")
    cleanup = leases_sub.add_parser("cleanup", help="remove unused lease files (like virt-sanlock-cleanup)")
    _add_connect(cleanup, top=False)
    cleanup.add_argument("--dry-run", action="store_true", help="list the candidates, remove nothing")
    cleanup.add_argument("--json", action="store_true", help="print JSON")
    cleanup.add_argument("-q", "--quiet", action="store_true", help="print nothing; the exit code tells")
    return parser


class UsageError(Exception):
    """A problem with what the user asked for, reported as one line."""


class OutputError(Exception):
    """The command's output can't be written (a full disk, an I/O error): one line, exit 1, and
    never taken for a host's or a lease directory's error."""


class _GuardedOutput:
    """sys.stdout for a subcommand: a write error is an OutputError; a broken pipe stays
    BrokenPipeError (the reader left: exit 141, as for any Unix tool)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._guarded(self._stream.write, text)

    def flush(self) -> None:
        self._guarded(self._stream.flush)

    @staticmethod
    def _guarded(call: Callable[..., object], *args: object):  # noqa: ANN205 - what call returns
        try:
            return call(*args)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(f"cannot write the output: {exc.strerror or exc}") from None

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


def _setup_logging(path: str | None) -> None:
    named = path is not None  # `--log /dev/stderr` is the operator's own choice: a symlink there is followed
    if path is None:
        state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
        path = os.path.join(state, "virttui", "virttui.log")
    try:
        handler = _private_log_handler(path, follow=named)
    except OSError:
        return  # logging is a help, never a reason to fail
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _private_log_handler(path: str, *, follow: bool = False) -> logging.FileHandler:
    """The log lists every host (URIs with user names and key paths): a directory virttui creates is
    0700, the file 0600 whatever the umask, and a symlink planted at the file's name is not followed."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):  # an existing one (the cwd of `--log ./x.log`) is not virttui's to change
        os.makedirs(directory, mode=0o700, exist_ok=True)
    nofollow = 0 if follow else os.O_NOFOLLOW
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | nofollow | os.O_CLOEXEC, 0o600)
    try:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and info.st_mode & 0o077:
            os.fchmod(fd, 0o600)  # a log an older virttui left world-readable
        stream = os.fdopen(fd, "a", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise
    handler = logging.FileHandler(path, encoding="utf-8", delay=True)  # delay: it writes to our stream
    handler.stream = stream
    return handler


@contextmanager
def open_hosts(args: argparse.Namespace) -> Iterator[tuple[list[Driver], float, Config]]:
    """Drivers for the hosts the user named (or the demo), the poll interval, and the config file
    read (which the console saves hosts and choices to); drivers are closed on exit."""
    from virttui.drivers.registry import open_driver_or_placeholder

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    interval = getattr(args, "poll_interval", None)
    if interval is None:
        interval = config.poll_interval
    elif not 0.2 <= interval <= 3600:  # also refuses nan and inf, as the config file's check does
        raise UsageError("--poll-interval must be a number of seconds from 0.2 to 3600")
    from virttui.locks.readers import ELECTION

    ELECTION.slow_interval, ELECTION.full_interval = config.lease_slow_interval, config.lease_full_interval
    uris = list(dict.fromkeys(args.connect or []))  # a host named twice is one host
    demo = None
    if getattr(args, "demo", False) or not uris:
        if not uris and not args.demo:
            uris = list(config.hosts) or ([os.environ["LIBVIRT_DEFAULT_URI"]]
                                          if os.environ.get("LIBVIRT_DEFAULT_URI") else [])
        if args.demo or not uris:
            from virttui.demo import Demo

            demo = Demo()
    drivers: list[Driver] = list(demo.drivers) if demo else []
    drivers.extend(open_driver_or_placeholder(uri) for uri in uris if not demo or args.connect)
    try:
        yield drivers, interval, config
    finally:
        for driver in drivers:
            try:
                driver.close()
            except Exception:
                log.exception("closing %s", driver.uri)
        if demo is not None:
            demo.close()


# -- status -------------------------------------------------------------------
def status_json(snapshots: Sequence[HostSnapshot]) -> dict:
    hosts = []
    for snap in snapshots:
        connected = snap.host.state is ConnectionState.CONNECTED
        hosts.append({
            "uri": snap.host.shown_uri,
            "hostname": snap.host.hostname,
            "state": "connected" if connected else "error",
            "error": snap.host.last_error,
            "domains": [
                {
                    "uuid": dom.uuid,
                    "name": dom.name,
                    "state": dom.state.value,
                    "reason": dom.reason,
                    "vcpus": dom.vcpus,
                    "memory_kib": dom.memory_kib,
                    "disks": [
                        {"target": d.target, "source": d.source, "format": d.format,
                         "readonly": d.readonly, "shareable": d.shareable}
                        for d in dom.disks
                    ],
                }
                for dom in snap.domains
            ],
        })
    return {"hosts": hosts}


def status_text(snapshots: Sequence[HostSnapshot]) -> str:
    from virttui.format import human_kib

    lines = []
    for snap in snapshots:
        host = snap.host
        if host.state is not ConnectionState.CONNECTED:
            lines.append(f"{_printable(host.shown_uri)}: error")
            continue
        lines.append(f"{_printable(host.label)} ({_printable(host.shown_uri)}): {_printable(host.hypervisor)} "
                     f"{_printable(host.hypervisor_version)}, "
                     f"{host.cpus} CPUs, {human_kib(host.memory_kib)}, {len(snap.domains)} domains")
        width = max([len(d.name) for d in snap.domains] + [4])
        lines.append(f"  {'Id':>4}  {'Name':<{width}}  {'State':<18} {'vCPUs':>5} {'Memory':>10}")
        for dom in snap.domains:
            dom_id = str(dom.id) if dom.id is not None else "-"
            lines.append(f"  {dom_id:>4}  {_printable(dom.name):<{width}}  {dom.state_text:<18} "
                         f"{dom.vcpus:>5} {human_kib(dom.memory_kib):>10}")
    return "\n".join(lines)


def _printable(text: str) -> str:
    """Names come from hosts: never let a control character reach the terminal."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def cmd_status(args: argparse.Namespace) -> int:
    with open_hosts(args) as (drivers, _, _):
        snapshots = [poll_once(driver) for driver in drivers]
    if args.json:
        print(json.dumps(status_json(snapshots), indent=2))
    else:
        print(status_text(snapshots))
    for snap in snapshots:
        for warning in snap.host.warnings:
            print(f"virttui: warning: {_printable(snap.host.label)}: {_printable(warning)}", file=sys.stderr)
    failed = [s.host for s in snapshots if s.host.state is not ConnectionState.CONNECTED]
    for host in failed:
        print(f"virttui: {_printable(host.last_error)}", file=sys.stderr)
    return 1 if failed else 0


# -- leases -------------------------------------------------------------------
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


# -- top ----------------------------------------------------------------------
def cmd_top(args: argparse.Namespace) -> int:
    from virttui.top import run_batch

    if args.delay is not None and not 0.1 <= args.delay <= 86400:
        raise UsageError("-d/--delay must be between 0.1 and 86400 seconds")
    if args.iterations is not None and args.iterations < 1:
        raise UsageError("-n/--iterations must be at least 1")
    with open_hosts(args) as (drivers, interval, _):
        fmt = "csv" if args.csv else "json" if args.json else "text"
        return run_batch(drivers, delay=args.delay or interval, iterations=args.iterations, fmt=fmt)


# -- console ------------------------------------------------------------------
def cmd_console(args: argparse.Namespace) -> int:
    from virttui.firstpoll import start_first_polls

    with open_hosts(args) as (drivers, interval, config):
        first_polls = start_first_polls(drivers)  # before Textual is imported: see virttui.firstpoll
        from virttui.app import VirtTUI

        app = VirtTUI(drivers, poll_interval=interval, contain_errors=True, debug=args.debug, config=config,
                      first_polls=first_polls)
        app.run()
    if app.fatal_message:
        print(f"virttui: {_printable(app.fatal_message)}", file=sys.stderr)
    return app.return_code or 0


def _subcommand(args: argparse.Namespace) -> Callable[[argparse.Namespace], int]:
    if args.command == "leases":
        return cmd_leases_status if args.leases_command == "status" else cmd_leases_cleanup
    return cmd_status if args.command == "status" else cmd_top


def _run(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """The command's exit status; every failure is one line on stderr, never a traceback."""
    try:
        code = command(args)
        sys.stdout.flush()  # here, not at exit: a full disk is an error, not "Exception ignored"
        return code
    except UsageError as exc:
        print(f"virttui: {_printable(str(exc))}", file=sys.stderr)
        return 2
    except OutputError as exc:
        print(f"virttui: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `virttui top --batch | head`: the reader left, as for any Unix tool
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # a bug: one line here, the traceback in the log
        log.exception("unexpected error")
        print(f"virttui: internal error: {type(exc).__name__}: {_printable(str(exc))} (details in the log)",
              file=sys.stderr)
        return 70


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.connect = (args.connect or []) + getattr(args, "sub_connect", [])
    _setup_logging(args.log)
    if sys.stdout is None:  # started with stdout closed (`virttui status >&-`)
        if sys.stderr is not None:
            print("virttui: no standard output to write to", file=sys.stderr)
        return 1
    if args.command is None:
        return _run(cmd_console, args)
    resume_collection()  # the console resumes it itself, after its first frame
    stdout = sys.stdout
    with contextlib.suppress(AttributeError, ValueError):  # a host's name in an ASCII locale: escaped
        cast(io.TextIOWrapper, stdout).reconfigure(errors="backslashreplace")  # another stream: AttributeError
    sys.stdout = _GuardedOutput(stdout)
    try:
        return _run(_subcommand(args), args)
    finally:
        sys.stdout = stdout

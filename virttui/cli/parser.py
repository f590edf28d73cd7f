"""The command line's grammar: the console's options and the subcommands'."""

from __future__ import annotations

import argparse

from virttui import __version__


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

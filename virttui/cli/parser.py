"""The command line's grammar: the console's options and the subcommands'."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import NoReturn

from virttui import __version__

DESCRIPTION = "Keyboard-driven console for libvirt hosts."


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


_CONSOLE_VALUED = frozenset({"-c", "--connect", "--config", "--poll-interval", "--log"})
_OPTION_WORD = re.compile(r"--?[A-Za-z]")


def parse_command_line(argv: Sequence[str]) -> argparse.Namespace:
    """argv parsed by argparse (cli.main tries virttui.cli.plainargs first). A console start (no
    subcommand, no help) skips building the subcommands' parsers; anything else, or any error, goes
    to the whole grammar, so messages are the same."""
    if _console_start(argv):
        console = _ConsoleParser(argv)
        _add_console_options(console)
        console.set_defaults(command=None)
        return console.parse_args(argv)
    return build_parser().parse_args(argv)


def _console_start(argv: Sequence[str]) -> bool:
    """Whether argv is options of the console alone: no word that could be a subcommand, no help.
    A dash-word argparse reads as a positional one (`-1`, one with a space) is not an option."""
    takes_value = False
    for token in argv:
        if takes_value:
            takes_value = False
        elif token in _CONSOLE_VALUED:
            takes_value = True
        elif not _OPTION_WORD.match(token) or " " in token or token.startswith(("-h", "--h")):
            return False
    return True


class _ConsoleParser(argparse.ArgumentParser):
    """The console's options only; an error is reported by the whole grammar."""

    def __init__(self, argv: Sequence[str]) -> None:
        super().__init__(prog="virttui", description=DESCRIPTION)
        self._argv = list(argv)

    def error(self, message: str) -> NoReturn:
        build_parser().parse_args(self._argv)
        super().error(message)  # the whole grammar took it after all: this parser's message


def _add_console_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"virttui {__version__}")
    _add_connect(parser, top=True)
    parser.add_argument("--poll-interval", type=float, metavar="SECONDS", help="seconds between polls (default 2)")
    parser.add_argument("--log", metavar="FILE", help="log file (default ~/.local/state/virttui/virttui.log)")
    parser.add_argument("--debug", action="store_true", help="show the log live in a pane of the console")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="virttui", description=DESCRIPTION)
    _add_console_options(parser)
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

"""Command line: the console, `status`, `top --batch` and `leases status|cleanup`, a module each.

Every failure ends as one clear line on stderr and a non-zero exit, never a
traceback; tracebacks of real bugs go to the log file.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from virttui.cli.console import cmd_console
from virttui.cli.hosts import open_hosts
from virttui.cli.logfile import _private_log_handler, _setup_logging
from virttui.cli.output import OutputError, UsageError, _GuardedOutput, _printable
from virttui.cli.plainargs import plain_console_args
from virttui.runtime.collector import resume_collection

if TYPE_CHECKING:
    import argparse

# The subcommands and the whole grammar, imported when first named: a console start needs neither
# (argparse, json and the subcommands' modules are about 4 ms of it).
_LAZY = {
    "build_parser": "virttui.cli.parser",
    "parse_command_line": "virttui.cli.parser",
    "cmd_leases_cleanup": "virttui.cli.leases",
    "cmd_leases_status": "virttui.cli.leases",
    "cmd_status": "virttui.cli.status",
    "status_json": "virttui.cli.status",
    "status_text": "virttui.cli.status",
    "cmd_top": "virttui.cli.topcmd",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


log = logging.getLogger("virttui")

__all__ = [
    "OutputError",
    "UsageError",
    "_GuardedOutput",
    "_printable",
    "_private_log_handler",
    "_setup_logging",
    "build_parser",
    "cmd_console",
    "cmd_leases_cleanup",
    "cmd_leases_status",
    "cmd_status",
    "cmd_top",
    "main",
    "open_hosts",
    "parse_command_line",
    "status_json",
    "status_text",
]


def _subcommand(args: argparse.Namespace) -> Callable[[argparse.Namespace], int]:
    if args.command == "leases":
        from virttui.cli.leases import cmd_leases_cleanup, cmd_leases_status

        return cmd_leases_status if args.leases_command == "status" else cmd_leases_cleanup
    if args.command == "status":
        from virttui.cli.status import cmd_status

        return cmd_status
    from virttui.cli.topcmd import cmd_top

    return cmd_top


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
    argv = sys.argv[1:] if argv is None else argv
    args = plain_console_args(argv)
    if args is None:
        from virttui.cli.parser import parse_command_line

        args = parse_command_line(argv)
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

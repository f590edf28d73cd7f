"""`virttui` with no subcommand: the console."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from virttui.cli.hosts import open_hosts
from virttui.cli.output import _printable

if TYPE_CHECKING:
    import argparse


def cmd_console(args: argparse.Namespace) -> int:
    from virttui.runtime.firstpoll import start_first_polls

    with open_hosts(args) as (drivers, interval, config):
        first_polls = start_first_polls(drivers)  # before Textual is imported: see virttui.runtime.firstpoll
        from virttui.console.app import VirtTUI

        app = VirtTUI(drivers, poll_interval=interval, contain_errors=True, debug=args.debug, config=config,
                      first_polls=first_polls)
        app.run()
    if app.fatal_message:
        print(f"virttui: {_printable(app.fatal_message)}", file=sys.stderr)
    return app.return_code or 0

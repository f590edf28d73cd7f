"""The `virttui` command's entry point: the cyclic garbage collector paused while the process starts.

Everything a start allocates lives on, so collecting during it is wasted work (docs/performance.md
has the figures). The console's collector takes over a second after its first frame (virttui.runtime.collector: the
survivors frozen, full collections on a timer); every other command turns automatic collection
back on as soon as its arguments are parsed.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn


def main() -> int:
    from virttui.runtime.collector import pause_collection_for_start

    pause_collection_for_start()
    from virttui.cli import main as cli_main

    code = cli_main()
    app = sys.modules.get("virttui.console.app")  # imported only if the console ran
    if app is not None and app.ended_in_terminal():
        exit_without_teardown(code)
    return code


def exit_without_teardown(code: int) -> NoReturn:
    """The console has ended and restored the terminal: exit now. The interpreter's teardown would
    free the whole heap (~1 s at 2000 domains) and join thread workers that a host may keep busy
    for a 30 s command timeout; the console needs neither (SIGTERM and SIGHUP must end it quickly)."""
    import logging

    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # the terminal is gone, or the stream closed
            pass
    logging.shutdown()
    os._exit(code)

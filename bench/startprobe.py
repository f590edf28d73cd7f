"""Start-time probe: `python -m bench.startprobe [--baseline | -- VIRTTUI ARGS...]`.

Runs headless and exits as soon as the first frame showing a populated table
is painted, printing `populated=<time.monotonic()>` (the parent started its
clock just before spawning this interpreter) and a few `name=value` facts.

With virttui arguments it builds the app exactly as `virttui` does (same
parser, logging, open_hosts and VirtTUI); the only difference is headless
output and the exit when the Domains table has rows. --baseline is the
yardstick: a minimal Textual app that shows one DataTable.
"""

from __future__ import annotations

import sys
import time


def _watch(app, has_rows) -> None:  # noqa: ANN001 - any Textual App; has_rows(screen) -> bool
    """Wrap app._display: after the first painted frame whose table has rows, report and exit."""
    display = app._display
    done = False

    def wrapped(screen, renderable) -> None:  # noqa: ANN001
        nonlocal done
        display(screen, renderable)
        if done or renderable is None or not has_rows(screen):
            return
        from textual._compositor import CompositorUpdate

        if isinstance(renderable, CompositorUpdate):
            renderable.render_segments(app.console)  # headless skips the terminal encoding: do it
        done = True
        print(f"populated={time.monotonic()!r}")
        print(f"paramiko={int('paramiko' in sys.modules)}")
        print(f"modules={len(sys.modules)}")
        sys.stdout.flush()
        app.exit()

    app._display = wrapped


def baseline() -> int:
    from textual.widgets import DataTable

    from bench.minimalapp import minimal_app

    app = minimal_app()
    _watch(app, lambda screen: screen.query_one(DataTable).row_count > 0)
    app.run(headless=True, size=(160, 50))
    return 0


def virttui(argv: list[str]) -> int:
    """What the `virttui` command (virttui.runtime.launch.main, then cli.main) does for the console, headless."""
    from virttui.runtime.collector import pause_collection_for_start

    pause_collection_for_start()
    from virttui import cli
    from virttui.cli.plainargs import plain_console_args

    args = plain_console_args(argv)  # as cli.main reads argv
    if args is None:
        args = cli.build_parser().parse_args(argv)
    cli._setup_logging(args.log)
    from virttui.runtime.firstpoll import start_first_polls

    def has_rows(screen) -> bool:  # noqa: ANN001
        from virttui.widgets.panes import DomainsTable

        tables = screen.query(DomainsTable)
        return bool(tables) and tables.first().row_count > 0

    with cli.open_hosts(args) as (drivers, interval, config):
        first_polls = start_first_polls(drivers)  # as cli.cmd_console: before Textual is imported
        from virttui.console.app import VirtTUI

        app = VirtTUI(drivers, poll_interval=interval, config=config, first_polls=first_polls)
        _watch(app, has_rows)
        app.run(headless=True, size=(160, 50))
    return app.return_code or 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--baseline"]:
        return baseline()
    if argv[:1] == ["--"]:
        argv = argv[1:]
    return virttui(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The `virttui` command pauses the cyclic collector for its start; every path turns it back on."""

from __future__ import annotations

import gc

from support.app import run_python

from virttui.runtime.collector import CycleCollector


def test_the_command_starts_with_collection_paused_and_a_batch_command_resumes_it():
    """Through the real entry point, in a fresh interpreter: paused while the CLI is imported
    and parsing, back on once a batch command (here `status`) has its arguments."""
    code = (
        "import gc, sys\n"
        "import virttui.cli.status as status\n"
        "seen = []\n"
        "real_status = status.cmd_status\n"
        "status.cmd_status = lambda args: seen.append(gc.isenabled()) or real_status(args)\n"
        "import virttui.runtime.launch\n"
        "sys.argv = ['virttui', 'status', '--json']\n"
        "gc.enable()\n"
        "rc = virttui.runtime.launch.main()\n"
        "sys.stderr.write(repr(seen))\n"
        "sys.exit(rc)\n"
    )
    assert run_python(code).stderr.strip().endswith("[True]")


def test_the_entry_point_pauses_collection_before_the_cli_runs(monkeypatch):
    import virttui.cli
    import virttui.runtime.launch

    seen = []
    monkeypatch.setattr(virttui.cli, "main", lambda: seen.append(gc.isenabled()) or 0)
    try:
        assert virttui.runtime.launch.main() == 0
    finally:
        gc.enable()
    assert seen == [False]


def test_the_console_collector_takes_over_from_the_paused_start():
    """Paused by the launcher, the console's collector keeps automatic collection off (it runs its
    own on a timer) and hands the settings back as they were before it started."""
    class App:
        def set_timer(self, delay: float, callback) -> None:  # noqa: ANN001
            pass

    gc.disable()
    try:
        collector = CycleCollector(App())
        collector.start()
        assert not gc.isenabled()
        collector.stop()
        assert not gc.isenabled()  # as the launcher left it
    finally:
        gc.enable()

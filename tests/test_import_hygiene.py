"""The driver and lock layers must load without Textual (they serve the CLI and other front ends)."""

import subprocess
import sys

MODULES = [
    "virttui.drivers.model", "virttui.drivers.uri", "virttui.drivers.base", "virttui.drivers.errors",
    "virttui.drivers.xmlparse", "virttui.drivers.nodexml", "virttui.drivers.testdriver",
    "virttui.drivers.registry", "virttui.locks.model", "virttui.locks.naming", "virttui.locks.leader",
    "virttui.locks.embedded", "virttui.locks.status", "virttui.fleet", "virttui.demo", "virttui.firstpoll",
    "virttui.locks.hostleases", "virttui.locks.readers", "virttui.locks.dircache", "virttui.locks.sharing",
    "virttui.locks.discovery", "virttui.locks.manager", "virttui.drivers.virsh", "virttui.actiontable",
    "virttui.views.hosts", "virttui.views.domains", "virttui.views.disks", "virttui.views.leases",
    "virttui.pollonce", "virttui.cli",
]


def test_drivers_and_locks_import_without_textual():
    code = (
        "import sys, importlib\n"
        f"for name in {MODULES!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'paramiko'))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_status_command_does_not_import_textual():
    code = ("import sys\nfrom virttui.cli import main\n"
            "rc = main(['status', '--json'])\n"
            "sys.stderr.write(repr([m for m in sys.modules if m.startswith('textual')]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert out.stderr.strip().endswith("[]")


def test_the_console_loads_dialogs_and_the_toml_parser_only_when_needed():
    """What a start does not need stays unloaded: measured, each cut a few ms of the start."""
    code = ("import sys\nimport virttui.cli, virttui.app, virttui.demo\n"
            "print(sorted(m for m in sys.modules if m in ('tomllib', 'paramiko', 'virttui.screens.prompt',"
            " 'virttui.screens.confirm', 'virttui.screens.detail', 'virttui.screens.help')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"

"""The driver and lock layers must load without Textual (they serve the CLI and other front ends)."""

import ast
import os
import subprocess
import sys
from pathlib import Path

MODULES = [
    "virttui.drivers.model", "virttui.drivers.uri", "virttui.drivers.base", "virttui.drivers.errors",
    "virttui.drivers.xmlparse", "virttui.drivers.nodexml", "virttui.drivers.testdriver",
    "virttui.drivers.registry", "virttui.locks.model", "virttui.locks.naming", "virttui.locks.leader",
    "virttui.locks.embedded", "virttui.locks.status", "virttui.fleet", "virttui.demo", "virttui.runtime.firstpoll",
    "virttui.locks.hostleases", "virttui.locks.readers", "virttui.locks.dircache", "virttui.locks.sharing",
    "virttui.locks.discovery", "virttui.locks.manager", "virttui.drivers.virsh", "virttui.actiontable",
    "virttui.views.hosts", "virttui.views.domains", "virttui.views.disks", "virttui.views.leases",
    "virttui.runtime.pollonce", "virttui.cli",
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


def test_the_console_loads_dialogs_and_the_toml_parser_only_when_needed(tmp_path):
    """What a start does not need stays unloaded: measured, each cut a few ms of the start. With no
    config file, reading the config loads no TOML parser either."""
    code = ("import sys\nimport virttui.cli, virttui.console.app, virttui.demo\n"
            "from virttui.config import load_config\nassert load_config().hosts == ()\n"
            "print(sorted(m for m in sys.modules if m in ('tomllib', 'paramiko', 'virttui.screens.prompt',"
            " 'virttui.screens.confirm', 'virttui.screens.detail', 'virttui.screens.help')))\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
                         env=env)
    assert out.stdout.strip() == "[]"


def test_a_console_start_loads_no_argparse_json_or_openssl(tmp_path):
    """A start reads plain console options without argparse, and its digests and markers without
    hashlib or secrets (both load OpenSSL's libcrypto); json is for configs being written (and for a
    lease agent's answers, which the demo has none of). Each was 1-3 ms of a start."""
    code = ("import sys\nsys.argv = ['virttui', '--demo', '--poll-interval', '2']\n"
            "import virttui.drivers.virsh, virttui.locks.manager  # a local host's driver and leases, too\n"
            "import virttui.console.app as console\nconsole.VirtTUI.run = lambda self, *args, **kwargs: None\n"
            "from virttui.cli import main\nassert main() == 0\n"
            "print(sorted(m for m in sys.modules if m in ('argparse', 'json', 'hashlib', '_hashlib', 'secrets', 'tomllib',"
            " 'virttui.cli.parser', 'virttui.cli.status', 'virttui.cli.leases', 'virttui.cli.topcmd')))\n")
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
                         env=env)
    assert out.stdout.strip() == "[]"


PACKAGE = Path(__file__).resolve().parents[2] / "virttui"


def _import_graph() -> dict[str, set[str]]:
    """Module -> the virttui modules it imports anywhere (a function's lazy import and TYPE_CHECKING too)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_import_cycle_in_virttui():
    assert _cycles(_import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_module_over_500_lines():
    """One job per module: a module that outgrows this is two (the benchmarks live outside the package)."""
    sizes = {str(path.relative_to(PACKAGE.parent)): len(path.read_text(encoding="utf-8").splitlines())
             for path in PACKAGE.rglob("*.py")}
    assert {path: size for path, size in sizes.items() if size > 500} == {}

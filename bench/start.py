"""Process start to the first guest on screen, in a pseudo-terminal the benchmark drives and reads (pyte),
against a minimal Textual DataTable app started the same way, alternated: the embedded demo, and a real
libvirt host locally and over SSH."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench import probe_env
from bench.stats import Table

START_TARGET = 1.3  # process start to the first guest on screen, at most this many times the minimal app's
SIZE = (160, 50)


def _compile_checkout() -> None:
    """Both sides start from bytecode, as an installed wheel does (pip compiles it). An editable install
    under PYTHONDONTWRITEBYTECODE=1 (this project's sandbox sets it) never writes virttui's .pyc files
    and recompiled all of it on every start: ~90 ms, a third of the start."""
    import compileall

    compileall.compile_dir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), quiet=1)


def _console_env() -> tuple[dict[str, str], str]:
    """An environment with a fresh HOME (no config, no state) and the checkout importable; and that HOME."""
    env = probe_env()
    env.pop("LIBVIRT_DEFAULT_URI", None)
    env.pop("NO_COLOR", None)
    home = tempfile.mkdtemp(prefix="virttui-bench-home-")
    env.update(HOME=home, XDG_CONFIG_HOME=f"{home}/.config", XDG_STATE_HOME=f"{home}/.local/state")
    return env, home


def pty_starts(args: list[str], first_guest: str, repeat: int) -> tuple[list[float], list[float]]:
    """Seconds to the first guest's name on the screen of a pseudo-terminal: the minimal app's and
    `virttui ARGS`'s, alternated so that drift in the machine's speed hits both alike."""
    from bench.minimalapp import FIRST_ROW
    from bench.ptyrun import time_to_text

    env, home = _console_env()
    base: list[float] = []
    console: list[float] = []
    try:
        for _ in range(repeat):
            base.append(time_to_text([sys.executable, "-m", "bench.minimalapp"], FIRST_ROW, env=env, size=SIZE))
            console.append(time_to_text([sys.executable, "-m", "virttui", *args], first_guest, env=env, size=SIZE))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return base, console


def add_start_rows(table: Table, what: str, base: list[float], console: list[float], connect: float = 0.0) -> None:
    """The medians and their ratio (a connect measured apart taken out of the console's) as table rows."""
    base_s, console_s = statistics.median(base), statistics.median(console)
    table.add(f"start in a terminal: minimal Textual DataTable app, median of {len(base)}", base_s * 1000, "ms")
    table.add(f"start in a terminal: {what} to its first guest on screen, median of {len(console)}",
              console_s * 1000, "ms")
    if connect:
        table.add(f"start in a terminal: {what}, its SSH connect (measured apart), median", connect * 1000, "ms")
    table.add(f"start in a terminal: {what}{' less its connect' if connect else ''} / minimal app",
              (console_s - connect) / base_s, "x", START_TARGET)


def bench_start(table: Table, *, quick: bool) -> None:
    """Process start to the first guest's name on a pseudo-terminal's screen: `virttui --demo` against
    a minimal DataTable app in the same terminal, alternated."""
    repeat = 3 if quick else 15  # medians of fewer moved by 0.1x from one run to the next on a 2-core VM
    _compile_checkout()
    base, demo = pty_starts(["--demo"], "web-01", repeat)
    add_start_rows(table, "virttui --demo", base, demo)
    _seconds, flags = start_once(["--", "--demo"])
    table.add("start: paramiko imported with only test:// hosts (1 = yes)", flags.get("paramiko", 1.0), "", 0)


def bench_start_real(table: Table, stack: Any, *, quick: bool) -> None:  # RealStack
    """The same on a real libvirt host with 4 guests (one running) and sanlock leases: local (its
    libvirtd socket) and over SSH, the SSH connect timed apart and taken out of the ratio."""
    host = stack.hosts[0]
    names = [f"vttest-start{index}" for index in range(4)]
    for index, name in enumerate(names):
        host.define_guest(name, start=index == 0)
    repeat = 3 if quick else 11
    _compile_checkout()
    try:
        base, local = pty_starts(["-c", host.local_uri], names[0], repeat)
        add_start_rows(table, "virttui -c a local host", base, local)
        base, remote = pty_starts(["-c", host.ssh_uri], names[0], repeat)
        add_start_rows(table, "virttui -c an SSH host", base, remote, _ssh_connect(host.ssh_uri, repeat))
    finally:
        for name in names:
            host.undefine_guest(name)


def _ssh_connect(uri: str, repeat: int) -> float:
    """Median seconds of the SSH transport's connect alone (TCP, key exchange, host key, auth), in a
    process of its own as the console's is: paramiko's import included, as the console pays it too."""
    env, home = _console_env()
    code = ("import sys, time; t = time.monotonic(); from virttui.drivers.uri import parse_uri; "
            "from virttui.drivers.ssh import SSHTransport; s = SSHTransport(parse_uri(sys.argv[1])); "
            "s.connect(); print(time.monotonic() - t); s.close()")
    samples = []
    try:
        for _ in range(repeat):
            out = subprocess.run([sys.executable, "-c", code, uri], env=env, capture_output=True, text=True,
                                 timeout=60, check=True).stdout
            samples.append(float(out.strip().splitlines()[-1]))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return statistics.median(samples)


def start_once(args: list[str]) -> tuple[float, dict[str, float]]:
    env = probe_env()
    env.pop("LIBVIRT_DEFAULT_URI", None)
    home = tempfile.mkdtemp(prefix="virttui-bench-home-")
    env.update(HOME=home, XDG_CONFIG_HOME=f"{home}/.config", XDG_STATE_HOME=f"{home}/.local/state")
    try:
        started = time.monotonic()  # CLOCK_MONOTONIC: the same clock in the child
        proc = subprocess.run([sys.executable, "-m", "bench.startprobe", *args], env=env,
                              capture_output=True, text=True, timeout=120, check=False)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"start probe failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    flags: dict[str, float] = {}
    populated = None
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        if key == "populated":
            populated = float(value)
        elif key:
            flags[key] = float(value)
    if populated is None:
        raise RuntimeError(f"start probe printed no time: {proc.stdout!r}")
    return populated - started, flags


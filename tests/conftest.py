"""Fixtures every tier shares: a private home, a stepped clock, the demo on a private lease directory;
and the rule that no test skips (each tier adds its own in its conftest.py).

The user's own config, state and home never leak into a test: HOME and the
XDG directories point into the test's tmp_path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from support.clock import SteppedClock

from virttui.demo import Demo

# Every property test draws the same examples on every run and keeps no example database:
# a failure in CI must fail again on the next run, not come and go with a random seed.
settings.register_profile("deterministic", derandomize=True, database=None)
settings.load_profile("deterministic")


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.delenv("LIBVIRT_DEFAULT_URI", raising=False)
    for name in [n for n in os.environ
                 if n == "NO_COLOR" or (n.startswith("TEXTUAL_") and not n.startswith("TEXTUAL_SNAPSHOT"))]:
        monkeypatch.delenv(name)  # a caller's colour or Textual settings would change what tests see
    return home


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock()


@pytest.fixture
def lease_dir(tmp_path: Path) -> Path:
    path = tmp_path / "leases"
    path.mkdir()
    return path


@pytest.fixture
def demo(lease_dir: Path, clock: SteppedClock) -> Iterator[Demo]:
    instance = Demo(lease_dir=str(lease_dir), clock=clock)
    yield instance
    instance.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No test may skip, and in CI the real-stack tests must have run: a green run that silently
    left them out (a `-m`, a PYTEST_ADDOPTS, a tool missing) would claim what it did not test."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    stats = reporter.stats
    problems = []
    skipped = stats.get("skipped", []) + stats.get("xfailed", [])
    if skipped:
        problems.append(f"{len(skipped)} test(s) skipped or xfailed: " + ", ".join(r.nodeid for r in skipped[:5]))
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        real = [r for r in stats.get("passed", []) if "realstack" in r.keywords]
        if not real:
            problems.append("CI: no real-stack test ran")
    if problems:
        for problem in problems:
            reporter.write_line(f"FAILED: {problem}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

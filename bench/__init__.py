"""Benchmarks: `python -m bench [--quick]` in a checkout prints figures and ratios against baselines
measured in the same run. Benchmarks are not timed tests: CI runs the quick form only so
that they cannot rot, and never checks thresholds. Not in the wheel: the real-stack ones need
the checkout's tests/realstack harness."""

from __future__ import annotations

import os
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]


def probe_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a `python -m bench.…` probe process: the checkout importable from any cwd."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CHECKOUT), env.get("PYTHONPATH", "")]))
    return env

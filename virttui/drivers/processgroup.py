"""Ending a child started in a session of its own, with everything it started. Standard library only."""

from __future__ import annotations

import os
import signal
import subprocess


def end_process_group(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM to its process group, SIGKILL after `grace` seconds if the leader is still there, and
    reap it. The group's id is the leader's pid, which stays reserved until it is reaped here."""
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except OSError:  # gone already
        pass

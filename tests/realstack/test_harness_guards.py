"""The real-stack harness's guards that need no stack: whose directory, which process, which run."""

from __future__ import annotations

import os
import threading

import pytest

from realstack import harness
from realstack.harness import RealStackError, _alive, _new_run, _private_root, _root_lock, cleanup_stale_runs


def test_a_start_time_never_read_means_gone_not_whoever_has_the_pid_now():
    assert _alive(os.getpid(), harness._starttime(os.getpid()))
    assert not _alive(os.getpid(), None)


def test_a_state_root_that_another_user_made_first_is_refused(tmp_path):
    planted = tmp_path / "root"
    planted.mkdir(mode=0o777)
    os.chown(planted, 65534, 65534)  # nobody: as if made in /var/tmp before root's first run
    with pytest.raises(RealStackError, match="not a directory owned by this user"):
        _private_root(planted)
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    with pytest.raises(RealStackError, match="not a directory owned by this user"):
        _private_root(link)


def test_a_run_is_never_taken_for_stale_while_it_is_being_made(tmp_path):
    """Another session's cleanup waits for the run being made; then finds it locked and leaves it."""
    root = _private_root(tmp_path / "root")
    (root / "run-crashed-before-its-lock").mkdir()
    cleaned: list[str] = []
    with _root_lock(root):
        other = threading.Thread(target=lambda: cleaned.extend(cleanup_stale_runs(root)))
        other.start()
        other.join(0.3)
        assert other.is_alive()  # waits for the root lock
        run_id, lock_fd = _new_run(root)
    other.join(10)
    try:
        assert cleaned == ["run-crashed-before-its-lock"]
        assert (root / run_id / "lock").exists()
    finally:
        os.close(lock_fd)


def test_a_dangling_symlink_as_the_state_root_is_a_clear_error(tmp_path):
    root = tmp_path / "root"
    root.symlink_to(tmp_path / "nowhere")
    with pytest.raises(RealStackError, match="remove it"):
        _private_root(root)


def test_a_signal_the_caller_set_is_left_alone(tmp_path):
    """`nohup scripts/test.sh`: SIGHUP stays ignored; SIGTERM (default) ends the run like Ctrl+C."""
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "test_inner.py").write_text(
        "import signal\n"
        "def test_handlers():\n"
        "    assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN\n"
        "    assert signal.getsignal(signal.SIGTERM).__name__ == '_interrupt'\n")
    tests_dir = Path(__file__).resolve().parents[1]
    done = subprocess.run(["nohup", sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
                           "realstack.fixtures", "--rootdir", str(tmp_path), "-c", "/dev/null",
                           str(tmp_path / "test_inner.py")],
                          env={**os.environ, "PYTHONPATH": str(tests_dir)}, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr

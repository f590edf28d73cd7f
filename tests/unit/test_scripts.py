"""The quick start's shared shell helpers (scripts/lib.sh), run by bash as the scripts run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "scripts" / "lib.sh"


def ensure_venv(venv: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", f'source "{LIB}" && ensure_venv && "$PY" -m pip --version'],
                          env={"PATH": "/usr/bin:/bin", "VIRTTUI_VENV": str(venv), "PYTHON": sys.executable,
                               "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1"},
                          capture_output=True, text=True, timeout=300)


def test_a_venv_left_without_pip_by_an_interrupted_run_is_made_again(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    assert (venv / "bin" / "python").exists()
    done = ensure_venv(venv)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("pip ")


def test_a_directory_that_is_not_a_venv_is_refused_and_kept(tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "precious").write_text("keep me")
    done = ensure_venv(target)
    assert done.returncode != 0
    assert "is not a virtualenv" in done.stderr
    assert (target / "precious").read_text() == "keep me"

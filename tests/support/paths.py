"""Where the checkout's assets are, for tests that read them."""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parents[2] / "assets"
DEMO_NODE = ASSETS / "demo" / "hv1.xml"


def shared_corpus() -> Path:
    """libvirt's test corpus, read in place: ../shared/corpus beside this checkout, or beside the
    repository it was cloned from (CI runs a fresh clone elsewhere). The first that exists; else the
    first, so a missing corpus fails its tests saying where it was looked for (never a skip)."""
    import subprocess

    checkout = Path(__file__).resolve().parents[2]
    candidates = [checkout.parent / "shared" / "corpus"]
    try:
        origin = subprocess.run(["git", "-C", str(checkout), "config", "--get", "remote.origin.url"],
                                capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except OSError:
        origin = ""
    if origin and "://" not in origin and Path(origin).is_dir():  # a clone of a local repository
        candidates.append(Path(origin).resolve().parent / "shared" / "corpus")
    return next((path for path in candidates if (path / "SOURCE.txt").is_file()), candidates[0])

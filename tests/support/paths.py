"""Where the checkout's assets are, for tests that read them."""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parents[2] / "assets"
DEMO_NODE = ASSETS / "demo" / "hv1.xml"

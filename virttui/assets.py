"""Find the shipped assets (demo nodes, styles, sample config).

In a wheel they live in virttui/assets/; in a checkout, in assets/ beside the package.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def assets_dir() -> Path:
    """The directory holding demo/, styles/ and config.sample.toml."""
    for candidate in (_PACKAGE_DIR / "assets", _PACKAGE_DIR.parent / "assets"):
        if (candidate / "demo").is_dir():
            return candidate
    raise FileNotFoundError("virttui assets not found: reinstall the package")


def asset(*parts: str) -> Path:
    return assets_dir().joinpath(*parts)


def styles(name: str) -> str:
    """A stylesheet from styles/, as text for a class's DEFAULT_CSS: Textual parses it when the first
    widget of that class is mounted, not at start as it parses the App's CSS_PATH."""
    return asset("styles", name).read_text(encoding="utf-8")

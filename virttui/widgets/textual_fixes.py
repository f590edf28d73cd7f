"""Fixes to the pinned Textual (8.2.8) for a console left open for days. Imported by the app.

StylesCache.get_inner_outer is an lru_cache(1024) on a method: its key holds the StylesCache
itself, and each StylesCache holds its widget's rendered lines. So the last 1024 widgets to
paint stayed alive after they were removed (every recomposed Footer key, every toast), each
with its lines: found by the soak, where this was most of the RSS growth that remained after
the Footer fix. The result depends only on the two colours, so it is cached on those alone.
"""

from __future__ import annotations

from functools import lru_cache

from textual.style import Style
from textual._styles_cache import StylesCache
from textual.color import Color


@lru_cache(1024)
def _inner_outer(base_background: Color, background: Color) -> tuple[Style, Style]:
    return (Style(background=base_background + background), Style(background=base_background))


def _get_inner_outer(self: StylesCache, base_background: Color, background: Color) -> tuple[Style, Style]:
    """StylesCache.get_inner_outer, without keeping `self` alive."""
    return _inner_outer(base_background, background)


StylesCache.get_inner_outer = _get_inner_outer  # type: ignore[method-assign]

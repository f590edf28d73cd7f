"""Fixes to the pinned Textual (8.2.8), each found by a measurement. Imported by the app.

Memory, for a console left open for days: StylesCache.get_inner_outer is an lru_cache(1024) on a
method: its key holds the StylesCache itself, and each StylesCache holds its widget's rendered
lines. So the last 1024 widgets to paint stayed alive after they were removed (every recomposed
Footer key, every toast), each with its lines: found by the soak, where this was most of the RSS
growth that remained after the Footer fix. The result depends only on the two colours, so it is
cached on those alone.
"""

from __future__ import annotations

import time
import weakref
from functools import lru_cache
from typing import Literal

from textual import messages
from textual.app import App
from textual.color import Color
from textual.screen import Screen
from textual.scrollbar import ScrollBar
from textual.style import Style
from textual.widgets import OptionList

from virttui.widgets.compat import StylesCache


@lru_cache(1024)
def _inner_outer(base_background: Color, background: Color) -> tuple[Style, Style]:
    return (Style(background=base_background + background), Style(background=base_background))


def _get_inner_outer(self: StylesCache, base_background: Color, background: Color) -> tuple[Style, Style]:
    """StylesCache.get_inner_outer, without keeping `self` alive."""
    return _inner_outer(base_background, background)


StylesCache.get_inner_outer = _get_inner_outer  # type: ignore[assignment]  # a function for the lru_cache wrapper


# Latency: a widget changed just before a frame is painted one frame later, since its repaint
# comes through its own Idle and an Update to the screen. Right after a key, shown widgets
# waiting to be repainted are painted in the frame being made, and the Update they post
# afterwards, with nothing left to repaint, no longer wakes the screen for an empty frame (nor
# does one from a scrollbar that is not shown). Layout requests are left to Textual: its first
# layout of the detail screen depends on them.
_compositor_refresh = Screen._compositor_refresh
_on_update = Screen._on_update


# Only right after a key: when poll results arrive in a burst, a widget painted early is often
# changed again by the next result and painted twice, where waiting would have painted it once.
EAGER_AFTER_KEY_S = 0.3
_eager_until = 0.0


def paint_eagerly_after_key() -> None:
    """The app calls this on each key: for a moment, frames take every widget that is ready."""
    global _eager_until
    _eager_until = time.monotonic() + EAGER_AFTER_KEY_S


def _compositor_refresh_with_waiting(self: Screen) -> None:
    """Screen._compositor_refresh, with the shown widgets that asked for a repaint painted now; and
    no frame made while the app is in a batch, whose frame App._display would throw away."""
    app = self.app
    if app._batch_count and self is app.screen and not app.is_inline:
        _painted_after_batch.add(self)
        return
    if time.monotonic() < _eager_until:
        waiting = {widget for widget in self._compositor.visible_widgets if widget._repaint_regions}
        if waiting:
            self._compositor.update_widgets(waiting)
    _compositor_refresh(self)


async def _on_update_unless_painted(self: Screen, message: messages.Update) -> None:
    """Screen._on_update, ignoring a shown widget painted since it asked, or a hidden scrollbar."""
    widget = message.widget
    shown = widget in self._compositor.visible_widgets
    if (shown and not widget._repaint_regions) or (type(widget) is ScrollBar and not shown):
        message.stop()
        message.prevent_default()
        return
    await _on_update(self, message)


# Start-up: the app's first layout comes while it is still mounting (in a batch), and the frame made
# from it was composed in full and then dropped: a fifth of the time to the first guest on screen.
_painted_after_batch: weakref.WeakSet[Screen] = weakref.WeakSet()
_end_batch = App._end_batch


def _end_batch_and_paint(self: App) -> None:
    """App._end_batch, then a frame for each screen whose frame the batch held back."""
    _end_batch(self)
    if not self._batch_count and _painted_after_batch:
        held = list(_painted_after_batch)
        _painted_after_batch.clear()
        for screen in held:
            if screen.is_attached:
                screen.refresh()


App._end_batch = _end_batch_and_paint  # type: ignore[method-assign]
Screen._compositor_refresh = _compositor_refresh_with_waiting  # type: ignore[method-assign]
Screen._on_update = _on_update_unless_painted  # type: ignore[method-assign]


# Crash: PgUp/PgDn in an OptionList with options but no rendered lines (the Columns dialog at
# 11 columns or less, the command palette 3 rows high) indexed an empty line table: KeyError,
# which killed the app (found by monkey testing with tiny terminal sizes).
_move_page = OptionList._move_page


def _move_page_when_laid_out(self: OptionList, direction: Literal[-1, 1]) -> None:
    """OptionList._move_page, doing nothing until the list has lines to page through."""
    if not self._lines or (self.highlighted or 0) not in self._index_to_line:
        return
    _move_page(self, direction)


OptionList._move_page = _move_page_when_laid_out  # type: ignore[method-assign]

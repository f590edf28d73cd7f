"""Every part of Textual that is not its public API and that virttui relies on, in one place.

Textual is pinned exactly (pyproject.toml) because of these; tests/unit/test_textual_compat.py checks
the installed version and that each name below still exists, so an upgrade fails there, at once
and by name, instead of somewhere in a repaint.
"""

from __future__ import annotations

from textual._styles_cache import StylesCache
from textual._two_way_dict import TwoWayDict
from textual.widgets._footer import FooterKey

__all__ = ["PINNED_TEXTUAL", "PRIVATE_MODULES", "PRIVATE_NAMES", "FooterKey", "StylesCache", "TwoWayDict"]

PINNED_TEXTUAL = "8.2.8"

# private modules imported (what from them)
PRIVATE_MODULES: dict[str, tuple[str, ...]] = {
    "textual._two_way_dict": ("TwoWayDict",),  # DiffTable rebuilds DataTable's row index in one go
    "textual.widgets._footer": ("FooterKey",),  # KeysFooter flips keys' enabled state in place
    "textual._styles_cache": ("StylesCache",),  # textual_fixes: its per-widget LRU cache leaked widgets
}

# private attributes and methods read, set or overridden, by the class (or an instance of it) that has them
PRIVATE_NAMES: dict[str, tuple[str, ...]] = {
    "textual.widgets.DataTable": (  # difftable.py, cellrender.py: rows diffed in, only changed cells rendered
        "_cell_render_cache", "_column_locations", "_data", "_get_row_renderables", "_get_styles_to_render_cell",
        "_line_cache", "_new_rows", "_pseudo_class_state", "_render_cell", "_render_line", "_require_update_dimensions",
        "_row_locations", "_row_render_cache", "_row_renderable_cache", "_show_hover_cursor",
        "_update_column_widths", "_update_count", "_update_dimensions", "_updated_cells",
    ),
    "textual.widget.Widget": (  # difftable.py lays out at once; textual_fixes.py skips repaints
        "_clear_arrangement_cache", "_layout_required", "_layout_updates", "_repaint_regions", "_styles_cache",
    ),
    "textual.screen.Screen": ("_compositor", "_compositor_refresh", "_on_update"),  # textual_fixes.py
    "textual.widgets.OptionList": ("_lines", "_move_page"),  # textual_fixes.py: paging an empty list
    "textual.widgets.Footer": ("_bindings_ready",),  # widgets/keysfooter.py
    "textual.message_pump.MessagePump": ("_peek_message",),  # screens/main.py: one refresh per burst of polls
    "textual.app.App": ("_dispatch_action", "_handle_exception", "_close_messages_no_wait"),  # app.py
    "textual.drivers.linux_driver.LinuxDriver": ("fileno", "_app", "_loop"),  # terminal.py: a terminal gone
}

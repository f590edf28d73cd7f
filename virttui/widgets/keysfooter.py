"""The Footer of the main screen: Textual's, recomposed only when the keys it shows change."""

from __future__ import annotations

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.geometry import Size
from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

MORE_WIDTH = len("? more") + 1


class KeysFooter(Footer):
    """Textual's Footer, recomposed only when what it shows changed.

    Footer recomposes (unmounts, mounts and restyles all its keys, then relayouts the screen) on
    every bindings signal, and focus moves send one: that was most of a Tab between panes, ~50 ms
    at 2000 domains, for a footer that showed the same keys before and after.
    """

    _composed: tuple | None = None

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            if self.compact and isinstance(widget, FooterKey):
                # as its compact watcher would on mount, where each key restyled itself (~1 ms a key)
                widget.add_class("-compact", update=False)
            yield widget
        # shown in place of the keys that don't fit: a key is never cut, and help lists them all
        more = FooterKey("question_mark", "?", "more", "help", classes="-more-keys -compact" if self.compact
                         else "-more-keys")
        more.display = False
        yield more.data_bind(compact=Footer.compact)

    def on_resize(self) -> None:
        self._fit_keys_after_layout()

    def _fit_keys_after_layout(self) -> None:
        for key in self.query(FooterKey):
            key.display = not key.has_class("-more-keys")
        self.call_after_refresh(self._fit_keys)

    def _fit_keys(self) -> None:
        """Hide the keys that would be cut at the right edge, and say "? more" instead."""
        keys = [key for key in self.query(FooterKey) if not key.has_class("-more-keys")]
        more = self.query(".-more-keys").first(FooterKey) if self.query(".-more-keys") else None
        if not keys or more is None:
            return
        left, width = self.region.x, self.region.width
        if keys[-1].region.right - left <= width:
            return
        room = width - MORE_WIDTH
        for key in keys:
            key.display = key.region.right - left <= room
        more.display = True

    def _showing(self) -> tuple:
        """Everything Footer.compose reads."""
        if not self._bindings_ready:
            return ()
        app = self.app
        active = self.screen.active_bindings
        keys = tuple((binding.key, app.get_key_display(binding), binding.description, binding.action, binding.group,
                      enabled, tooltip) for (_, binding, enabled, tooltip) in active.values() if binding.show)
        palette: tuple[str, str, str, str, bool, str] | None = None
        found = active.get(app.COMMAND_PALETTE_BINDING) if self.show_command_palette and app.ENABLE_COMMAND_PALETTE \
            else None
        if found is not None:
            _, binding, enabled, tooltip = found
            palette = (binding.key, app.get_key_display(binding), binding.description, binding.tooltip,
                       enabled, tooltip)
        return (keys, palette, self.combine_groups)

    async def recompose(self) -> None:
        showing = self._showing()
        if showing == self._composed:
            return
        if self._composed and self._set_enabled_in_place(showing):
            self._composed = showing
            return
        self._composed = showing
        self._forget_removed_keys()
        await super().recompose()
        self._fit_keys_after_layout()

    def show_enabled_now(self) -> None:
        """Flip the keys' enabled state at once, in the frame of the change that caused it.

        Footer learns of new bindings on an idle and recomposes after the next frame: a cursor move
        onto a guest in another state would paint its panes, then the Footer's keys in a frame of
        their own. When more than the keys' labels and enabled states changed, the recompose
        still follows.
        """
        if not self._bindings_ready or self._composed is None:
            return
        showing = self._showing()
        if showing != self._composed and self._set_enabled_in_place(showing):
            self._composed = showing

    def _set_enabled_in_place(self, showing: tuple) -> bool:
        """When the same keys stay in the same places and only what they say, do or whether they are
        enabled changed (the cursor moved between a running and a stopped guest, onto a paused one:
        p says Resume, not Pause, or the first domain appeared), update those keys rather than
        recompose, which relaid the screen out a frame after the key (the slowest tenth of cursor
        moves at 2000 domains). False when anything else changed."""
        if not self._composed:
            return False
        _old_keys, old_palette, old_groups = self._composed
        keys, palette, groups = showing
        if (palette, groups) != (old_palette, old_groups):
            return False
        shown = [widget for widget in self.query(FooterKey) if not widget.has_class("-more-keys")]
        wanted = _first_per_action(keys)  # Footer shows an action's first binding, in this order
        if len(shown) != len(wanted):
            return False
        for widget, (key, display, _description, _action, group, _enabled, _tooltip) in zip(shown, wanted, strict=True):
            if widget.key != key or widget.key_display != display or group is not None:
                return False  # grouped keys show their description elsewhere: recompose
        relabelled = False
        for widget, (_key, _display, description, action, _group, enabled, tooltip) in zip(shown, wanted, strict=True):
            if (widget.description, widget.action) != (description, action):
                widening = cell_len(description) - cell_len(widget.description)  # "Resume" is wider than "Pause"
                widget.description, widget.action = description, action
                widget.tooltip = tooltip or None
                widget.refresh(layout=bool(widening))
                if widening:  # a layout that resizes a widget sets its virtual size, which asks for a second
                    size = widget.virtual_size  # layout a frame later: set it now, and one layout does
                    widget.set_reactive(Widget.virtual_size, Size(size.width + widening, size.height))
                relabelled = relabelled or bool(widening)
            widget._disabled = not enabled  # what FooterKey.__init__ sets: a click on it rings the bell
            widget.set_class(not enabled, "-disabled")
        if relabelled:  # a wider label may push the last shown key past the edge
            self.call_after_refresh(self._refit_if_cut)
        return True

    def _refit_if_cut(self) -> None:
        """Fit the keys again only when a shown key now crosses the edge: refitting shows every key
        for a frame, then hides what does not fit (two relayouts, and a frame after the key's)."""
        shown = [key for key in self.query(FooterKey) if key.display and not key.has_class("-more-keys")]
        more_shown = any(key.display for key in self.query(".-more-keys"))
        room = self.region.width - (MORE_WIDTH if more_shown else 0)
        if shown and shown[-1].region.right - self.region.x > room:
            self._fit_keys_after_layout()

    def _forget_removed_keys(self) -> None:
        """Drop the watchers of FooterKeys that earlier recomposes removed.

        Each FooterKey binds Footer.compact (data_bind), which appends (key, setter) to this
        footer's watcher list; Textual prunes that list only when compact changes, which it never
        does. Every recompose so kept its removed keys alive, with their styles and render caches:
        the soak grew ~35 MB in 90 s, ~500 dead keys a minute, and each new binding scanned the
        whole list. Keys still mounted keep their watchers.
        """
        watchers = getattr(self, "__watchers", None)
        if not watchers:
            return
        for name, entries in watchers.items():
            watchers[name] = [(node, callback) for node, callback in entries
                              if node is self or getattr(node, "is_attached", True)]


def _first_per_action(keys: tuple) -> list[tuple]:
    """The first binding of each action, in the order Footer.compose makes their keys."""
    firsts: dict[str, tuple] = {}
    for entry in keys:
        firsts.setdefault(entry[3], entry)
    return list(firsts.values())

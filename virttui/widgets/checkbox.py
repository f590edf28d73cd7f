"""A checkbox that reads "[x]" or "[ ]": ticked or not shows in the text, not only in colour."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.content import Content, ContentText
from textual.geometry import Size
from textual.widgets import Checkbox


class TickBox(Checkbox, inherit_bindings=False):
    """Space ticks or clears it. Enter is left to the dialog, where it presses the default button."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("space", "toggle_button", "Toggle", show=False)]

    DEFAULT_CSS = """
    TickBox > .toggle--button, TickBox.-on > .toggle--button {
        background: transparent;
        color: $text;
        text-style: bold;
    }
    TickBox:disabled > .toggle--button {
        color: $text-disabled;
    }
    """

    def __init__(self, label: ContentText = "", value: bool = False, *, id: str | None = None,
                 disabled: bool = False) -> None:
        # compact: one line, no border, so a list of them reads as a list; a str is text, never markup
        super().__init__(Content(label) if isinstance(label, str) else label, value, id=id, disabled=disabled,
                         compact=True)

    @property
    def mark(self) -> str:
        return "[x]" if self.value else "[ ]"

    def render(self) -> Content:
        label = self.label.pad_right(1).stylize_before(self.get_visual_style("toggle--label"))
        return Content.assemble((f"{self.mark} ", self.get_visual_style("toggle--button")), label)

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return len(self.mark) + (2 + self.label.cell_length if self.label else 0)

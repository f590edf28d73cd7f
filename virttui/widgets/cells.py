"""Table cells: plain text (never parsed as markup), a style and a sort key; and a row of them.

A Cell renders itself directly where Rich's Text machinery would give the same segments
(one_cell_per_char): drawing cells is most of what a big table costs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from rich.cells import cell_len, get_character_cell_size
from rich.console import Console, ConsoleOptions
from rich.measure import Measurement
from rich.segment import Segment
from rich.text import Text


def one_cell_per_char(text: str) -> bool:
    """Printable, and every character one terminal cell wide (so slicing crops as Rich would):
    ASCII, and the tree and marker glyphs the panes use (├ └ ★ ▼ …). Each character on its own:
    the total alone is fooled where wide and zero-width ones balance out (NFD Japanese: く + U+3099)."""
    return text.isprintable() and (text.isascii() or (cell_len(text) == len(text)
                                                      and all(get_character_cell_size(ch) == 1 for ch in text)))


class Cell:
    """A table cell: plain text (never parsed as markup), a style, and a sort key."""

    __slots__ = ("text", "style", "sort_key")

    def __init__(self, text: str, style: str = "", sort_key: Any = None) -> None:
        self.text = text
        self.style = style
        self.sort_key = text.casefold() if sort_key is None else sort_key

    def as_text(self) -> Text:
        return Text(self.text, style=self.style, no_wrap=True, overflow="ellipsis", end="")

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        # What as_text() renders to, made directly for the common case (printable text of
        # one-cell characters on one line, cut with an ellipsis): Rich's Text machinery was half the cost
        # of drawing a cell, and DataTable draws every visible cell again after a sort, a filter or a
        # focus change.
        # Checked segment for segment against the Text path over texts, widths and styles.
        text = self.text
        width = options.max_width
        if text and width >= 2 and options.no_wrap and one_cell_per_char(text):
            if len(text) > width:
                text = text[:width - 1] + "…"
            yield Segment(text, console.get_style(self.style) if self.style else None)
        else:
            yield from self.as_text().__rich_console__(console, options)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return self.as_text().__rich_measure__(console, options)

    def __eq__(self, other: object) -> bool:
        # The sort key counts: a row whose key changed must be re-sorted even if it looks the same.
        return (isinstance(other, Cell) and self.text == other.text and self.style == other.style
                and self.sort_key == other.sort_key)

    def __hash__(self) -> int:
        return hash((self.text, self.style))

    def __repr__(self) -> str:
        return f"Cell({self.text!r})"


Row = tuple[str, Sequence[Cell]]


def sort_value(cell: Any) -> tuple[int, Any]:
    key = cell.sort_key if isinstance(cell, Cell) else cell
    return (1, 0) if key is None else (0, key)


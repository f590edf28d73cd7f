"""A sparkline drawn from zero: Textual's scales from its lowest sample to its highest, so a CPU
that wavers between 5.4% and 6.0% fills the graph as if it swung from idle to busy."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.color import Color, blend_rgb
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from textual.app import RenderResult as WidgetRender
from textual.renderables.sparkline import Sparkline as SparklineRenderable
from textual.widgets import Sparkline

BARS = SparklineRenderable.BARS  # one line's bar heights, lowest first


class FromZero:
    """Bars of `data` (at least one sample) measured from zero, or from the lowest sample if below it;
    coloured from `low` at the bottom to `high` at the top, as Textual colours its own."""

    def __init__(self, data: Sequence[float], width: int, height: int, low: Color, high: Color,
                 summary: Callable[[Sequence[float]], float] = max) -> None:
        self.data, self.width, self.height = data, width, height
        self.low, self.high, self.summary = low.get_truecolor(), high.get_truecolor(), summary

    def ratios(self) -> list[float]:
        """Each column's height, 0 to 1 of the graph's."""
        data, width = self.data, self.width
        bottom = min(0.0, *data)
        extent = max(data) - bottom or 1
        buckets: list[Sequence[float]]
        if len(data) <= width:  # a sample spreads over several columns
            buckets = [[data[column * len(data) // width]] for column in range(width)]
        else:  # a column sums up several samples
            buckets = [data[len(data) * column // width:len(data) * (column + 1) // width] for column in range(width)]
        return [(self.summary(bucket) - bottom) / extent for bucket in buckets]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        levels = len(BARS) * self.height - 1
        ratios = self.ratios()
        for line in reversed(range(self.height)):
            floor, ceiling = line * len(BARS), (line + 1) * len(BARS)
            for ratio in ratios:
                level = int(ratio * levels)
                if level < floor:
                    yield Segment(" ")
                else:
                    bar = "█" if level >= ceiling else BARS[level % len(BARS)]
                    yield Segment(bar, Style(color=Color.from_triplet(blend_rgb(self.low, self.high, ratio))))
            if line > 0:
                yield Segment.line()


class ZeroSparkline(Sparkline):
    """Textual's Sparkline, its bars measured from zero; fewer than two samples drawn as Textual does."""

    def render(self) -> WidgetRender:
        drawn = super().render()
        data: Sequence[float] = self.data or []
        if len(data) < 2 or not isinstance(drawn, SparklineRenderable):
            return drawn
        low, high = drawn.min_color.color, drawn.max_color.color
        if low is None or high is None:
            return drawn
        return FromZero(data, drawn.width or self.size.width, drawn.height or 1, low, high, drawn.summary_function)

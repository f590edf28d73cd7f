"""NO_COLOR: Textual then shows every colour as the grey of its luminance, and the dark ANSI colours
(red above all, the colour of crashed guests and failed hosts) come out nearly as dark as the
background. Each is lightened so that, in grey, text in it still reads."""

from __future__ import annotations

from rich.terminal_theme import TerminalTheme

LIGHTEN = 0.5  # the share of white mixed into each colour


def readable_in_grey(theme: TerminalTheme) -> TerminalTheme:
    """The theme with its 16 ANSI colours lightened, black (0 and 8) kept for what it is used for."""
    colours = [tuple(theme.ansi_colors[index]) for index in range(16)]

    def lighter(index: int, colour: tuple[int, int, int]) -> tuple[int, int, int]:
        if index % 8 == 0:
            return colour
        red, green, blue = colour
        return (round(red + (255 - red) * LIGHTEN), round(green + (255 - green) * LIGHTEN),
                round(blue + (255 - blue) * LIGHTEN))

    lightened = [lighter(index, colour) for index, colour in enumerate(colours)]  # type: ignore[arg-type]
    return TerminalTheme(tuple(theme.background_color), tuple(theme.foreground_color),  # type: ignore[arg-type]
                         lightened[:8], lightened[8:])

"""Human-readable text for tables and terminals: sizes, rates, percentages, text from a host."""

from __future__ import annotations

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(value: float | None) -> str:
    """1536 → '1.5 KiB'; None → '-'."""
    if value is None:
        return "-"
    size = float(value)
    for unit in _UNITS:
        shown = round(size) if unit == "B" else round(size, 1)  # as printed: 1023.96 KiB reads "1024.0"
        if abs(shown) < 1024 or unit == _UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PiB"  # pragma: no cover - loop always returns


def human_kib(kib: int | None) -> str:
    return human_bytes(None if kib is None else kib * 1024)


def human_rate(bps: float | None) -> str:
    return "-" if bps is None else human_bytes(bps) + "/s"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def latency(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:.0f} ms"


def printable(text: str) -> str:
    """Text from a host for a line of output: every non-printable character a "?", so no control
    character reaches the terminal (drivers.names.escaped shows them as escapes instead)."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def plural(count: int, noun: str) -> str:
    """"1 domain", "2 domains", "3 matches": a count and its noun, agreeing."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun}es" if noun.endswith(("s", "sh", "ch", "x")) else f"{count} {noun}s"

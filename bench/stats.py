"""Small timing helpers shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def status_kib(*fields: str) -> dict[str, int]:
    """Fields of /proc/self/status in KiB, e.g. status_kib("VmRSS", "VmHWM")."""
    values = {}
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key in fields:
                values[key] = int(rest.split()[0])
    return values


def rss_kib() -> int:
    return status_kib("VmRSS").get("VmRSS", 0)


def timed(func: Callable[[], object], repeat: int, warmup: int = 1) -> list[float]:
    """Seconds taken by each of `repeat` calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        func()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        samples.append(time.perf_counter() - started)
    return samples


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def p95_ms(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))] * 1000


class Table:
    """Rows of (figure, value, target, verdict) printed as one aligned table."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, figure: str, value: float, unit: str, target: float | None = None, higher_is_better: bool = False
            ) -> None:
        shown = f"{value:.2f} {unit}".strip()
        if target is None:
            self.rows.append((figure, shown, "", ""))
            return
        ok = value >= target if higher_is_better else value <= target
        sign = ">=" if higher_is_better else "<="
        self.rows.append((figure, shown, f"{sign} {target:g} {unit}".strip(), "ok" if ok else "MISSED"))

    def render(self) -> str:
        header = ("figure", "value", "target", "")
        widths = [max(len(str(r[i])) for r in [header, *self.rows]) for i in range(4)]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
        lines.append("  ".join("-" * w for w in widths).rstrip())
        lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in self.rows]
        return "\n".join(lines)

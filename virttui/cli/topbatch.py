"""`virttui top --batch`: per-domain stats streamed for scripts and logs, like virt-top's batch mode.

Each iteration polls every host once and prints one row per domain with rates
over the interval since the previous poll (the first poll is only the
baseline). Text, CSV (one header, then rows) or JSON lines (one object per
iteration).
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Callable
from typing import TextIO

from virttui.drivers.base import Driver
from virttui.drivers.model import ConnectionState, Domain, HostSnapshot
from virttui.format import plural, printable
from virttui.records import record

FIELDS = ("time", "host", "domain", "uuid", "state", "cpu_percent", "memory_kib", "memory_used_kib",
          "disk_read_bps", "disk_write_bps", "net_rx_bps", "net_tx_bps")


@record
class DomainSample:
    """One domain's figures over one interval."""

    host: str
    domain: Domain
    cpu_percent: float | None
    disk_read_bps: float | None
    disk_write_bps: float | None
    net_rx_bps: float | None
    net_tx_bps: float | None

    def as_dict(self, stamp: str) -> dict:
        dom = self.domain
        return {
            "time": stamp, "host": self.host, "domain": dom.name, "uuid": dom.uuid, "state": dom.state.value,
            "cpu_percent": _round(self.cpu_percent), "memory_kib": dom.memory_kib,
            "memory_used_kib": dom.memory_used_kib, "disk_read_bps": _round(self.disk_read_bps),
            "disk_write_bps": _round(self.disk_write_bps), "net_rx_bps": _round(self.net_rx_bps),
            "net_tx_bps": _round(self.net_tx_bps),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def samples(prev: HostSnapshot | None, cur: HostSnapshot) -> list[DomainSample]:
    """Rates of every domain of `cur` against `prev` (None rates where there is no earlier sample)."""
    from virttui.fleet import cpu_percent

    seconds = cur.taken_at - prev.taken_at if prev is not None else 0.0
    out = []
    for dom in cur.domains:
        before = prev.domain(dom.uuid) if prev is not None else None
        if before is None or seconds <= 0 or not dom.state.is_active:
            out.append(DomainSample(cur.host.label, dom, None, None, None, None, None))
            continue

        def rate(now: int, then: int) -> float:
            return max(0.0, (now - then) / seconds)

        out.append(DomainSample(
            cur.host.label, dom, cpu_percent(before, dom, seconds, cur.host.cpus),
            rate(dom.total_io.rd_bytes, before.total_io.rd_bytes),
            rate(dom.total_io.wr_bytes, before.total_io.wr_bytes),
            rate(dom.net_rx_bytes, before.net_rx_bytes), rate(dom.net_tx_bytes, before.net_tx_bytes),
        ))
    return out


class _Printer:
    def __init__(self, fmt: str, out: TextIO) -> None:
        self.fmt = fmt
        self.out = out
        self._csv = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n") if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writeheader()

    def iteration(self, stamp: str, rows: list[DomainSample], errors: list[str]) -> None:
        if self.fmt == "json":
            self.out.write(json.dumps({"time": stamp, "domains": [r.as_dict(stamp) for r in rows],
                                       "errors": errors}) + "\n")
        elif self._csv is not None:
            # On a terminal a name's control characters would be obeyed (an escape sequence in a domain
            # name can rewrite the screen): shown as "?" there; a pipe or file gets them as they are.
            shown = _cut if _is_terminal(self.out) else (lambda text, _width: text)
            for row in rows:
                self._csv.writerow({k: ("" if v is None else shown(v, 1 << 30) if isinstance(v, str) else v)
                                    for k, v in row.as_dict(stamp).items()})
            for error in errors:  # CSV has no place for them: stderr, so a failed host is never silent
                sys.stderr.write(f"virttui: {_cut(error, 1000)}\n")
        else:
            self.out.write(f"virttui top - {stamp}, {plural(len(rows), 'domain')}\n")
            self.out.write(f"{'HOST':<12} {'DOMAIN':<24} {'STATE':<11} {'%CPU':>6} {'MEM':>9} {'USED':>9} "
                           f"{'RDBY/s':>9} {'WRBY/s':>9} {'RXBY/s':>9} {'TXBY/s':>9}\n")
            for row in rows:
                d = row.as_dict(stamp)
                self.out.write(f"{_cut(d['host'], 12):<12} {_cut(d['domain'], 24):<24} {d['state']:<11} "
                               f"{_num(d['cpu_percent']):>6} {d['memory_kib']:>9} {_num(d['memory_used_kib']):>9} "
                               f"{_num(d['disk_read_bps']):>9} {_num(d['disk_write_bps']):>9} "
                               f"{_num(d['net_rx_bps']):>9} {_num(d['net_tx_bps']):>9}\n")
            for error in errors:
                self.out.write(f"error: {_cut(error, 1000)}\n")
            self.out.write("\n")
        self.out.flush()


def _is_terminal(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


def _cut(text: str, width: int) -> str:
    text = printable(text)
    return text if len(text) <= width else text[:width - 1] + "…"


def _num(value: float | int | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def run_batch(drivers: list[Driver], *, delay: float, iterations: int | None, fmt: str = "text",
              out: TextIO | None = None, sleep: Callable[[float], None] = time.sleep,
              now: Callable[[], float] = time.time) -> int:
    """Poll, wait, print; `iterations` None runs until interrupted. Exit 1 if a host failed throughout."""
    from virttui.runtime.pollonce import poll_once

    printer = _Printer(fmt, out or sys.stdout)
    previous: dict[str, HostSnapshot] = {}
    ever_ok: set[str] = set()
    for driver in drivers:
        snap = poll_once(driver)
        if snap.host.state is ConnectionState.CONNECTED:
            previous[driver.uri] = snap
            ever_ok.add(driver.uri)
    done = 0
    while iterations is None or done < iterations:
        sleep(delay)
        rows: list[DomainSample] = []
        errors: list[str] = []
        for driver in drivers:
            snap = poll_once(driver)
            if snap.host.state is not ConnectionState.CONNECTED:
                errors.append(snap.host.last_error)
                continue
            ever_ok.add(driver.uri)
            rows.extend(samples(previous.get(driver.uri), snap))
            previous[driver.uri] = snap
        printer.iteration(time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now())), rows, errors)
        done += 1
    return 0 if ever_ok == {driver.uri for driver in drivers} else 1

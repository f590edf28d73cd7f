"""Keypress to painted screen at 2000 domains, against the same keys in a minimal Textual app with a
DataTable of the same size, measured in the same run (see bench.baseline)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from bench.fleet import FULL, QUICK, SIZE, fleet_files, open_drivers
from bench.probe import Probe, domain_rows, warm_up
from bench.stats import Table, median_ms, p95_ms

KEY_CHARS = {"down": None, "up": None, "tab": "\t", "slash": "/", "escape": "\x1b", "backspace": "\x7f"}


WORDS = ("web", "db-0", "cache", "mq-1")  # typed after "/", letter by letter: each letter narrows the table
KEY_TARGET = 1.5  # a key's p95 at most this many times the minimal app's, measured in the same run
# the console's key kinds, and the minimal app's kind each is held against
KEY_KINDS = {"cursor move (j/down) in Domains": "cursor", "filter keystroke (after /)": "filter",
             "clear the filter (Esc)": "clear filter", "pane switch (Tab)": "tab"}


def bench_keys(table: Table, *, quick: bool) -> None:
    """Keypress → painted screen, with the whole fleet polling every 2 s, against the same keys in a
    minimal Textual app holding the same rows (bench.baseline), run right after in the same process.

    "settled": the first frame after which nothing is left to paint (every pane the key
    changes is drawn: the Disks pane follows the Domains cursor, Tab repaints two panes);
    "first frame": the first frame that shows the change at all.
    """
    from bench.baseline import measure_keys

    spec = QUICK if quick else FULL
    repeat = 10 if quick else 100  # p95 of 40 was the second-worst sample: too much luck in it
    with fleet_files(spec) as uris:
        settled, first, (columns, rows) = asyncio.run(_keys(uris, repeat))
    base = asyncio.run(measure_keys(columns, rows, size=SIZE, repeat=repeat, words=WORDS))
    for kind, base_kind in KEY_KINDS.items():
        samples = settled[kind]
        ratio = p95_ms(samples) / max(p95_ms(base[base_kind]), 0.001)
        table.add(f"keys: {kind}, settled, p95 / minimal app's ({len(rows)} rows)", ratio, "x", KEY_TARGET)
        table.add(f"keys: {kind}, settled, p95 of {len(samples)}", p95_ms(samples), "ms")
        table.add(f"keys: {kind}, minimal app, p95 of {len(base[base_kind])}", p95_ms(base[base_kind]), "ms")
        table.add(f"keys: {kind}, settled, median", median_ms(samples), "ms")
        table.add(f"keys: {kind}, first frame, p95", p95_ms(first[kind]), "ms")
    table.add(f"keys: open the filter (/), settled, p95 of {len(settled['open the filter (/)'])}",
              p95_ms(settled["open the filter (/)"]), "ms")
    pilot = settled["pilot"]
    table.add(f"keys: await pilot.press(down) + pilot.pause(), for comparison, median of {len(pilot)}",
              median_ms(pilot), "ms")


def _cursor_at(table: Any, row: int) -> bool:
    return bool(table.cursor_row == row)


def _filtered(screen: Any, text: str) -> bool:
    return bool(screen.filter_text == text)


def _focus_moved(app: Any, before: object) -> bool:
    return app.focused is not before


async def _keys(uris: list[str], repeat: int
                ) -> tuple[dict[str, list[float]], dict[str, list[float]], tuple[list[str], list[list[str]]]]:
    from textual import events

    from virttui.console.app import VirtTUI
    from virttui.widgets.panes import DomainsTable

    app = VirtTUI(open_drivers(uris), poll_interval=2.0, autopoll=True)
    settled: dict[str, list[float]] = {}
    first: dict[str, list[float]] = {}
    async with app.run_test(size=SIZE) as pilot:
        probe = Probe(app)
        await warm_up(app, probe)
        screen: Any = app.screen  # the main screen, with its filter_text
        domains = screen.query_one(DomainsTable)
        contents = domain_rows(domains)

        async def press(kind: str, key: str, done: Callable[[], bool]) -> None:
            char = KEY_CHARS.get(key, key if len(key) == 1 else None)
            event = events.Key(key, char)
            event.set_sender(app)
            started = time.perf_counter()
            app.post_message(event)  # as the terminal driver does
            ended = await probe.painted_when(done)
            shown = probe.first_frame if probe.first_frame is not None else ended
            settled.setdefault(kind, []).append(ended - started)
            first.setdefault(kind, []).append(shown - started)
            await asyncio.sleep(0.03)  # a fast typist, not a flood

        # cursor: j / down in Domains
        domains.focus()
        await probe.painted_when(lambda: app.focused is domains)
        for index in range(repeat):
            row = domains.cursor_row
            await press("cursor move (j/down) in Domains", "j" if index % 2 else "down",
                        partial(_cursor_at, domains, row + 1))

        # filter: after "/", type a word letter by letter (each letter narrows the table), Esc clears
        index = 0
        while len(settled.get("filter keystroke (after /)", ())) < repeat:
            word = WORDS[index % len(WORDS)]
            index += 1
            await press("open the filter (/)", "slash", lambda: app.focused is not None and app.focused.id == "filter")
            for end in range(1, len(word) + 1):
                await press("filter keystroke (after /)", word[end - 1], partial(_filtered, screen, word[:end]))
            await press("clear the filter (Esc)", "escape", lambda: app.focused is domains and not screen.filter_text)

        # pane switch: Tab
        for _ in range(repeat):
            before = app.focused
            await press("pane switch (Tab)", "tab", partial(_focus_moved, app, before))

        # for comparison: what `await pilot.press()` + `pilot.pause()` take (Pilot's idle waits included)
        domains.focus()
        await pilot.pause()
        samples = []
        for _ in range(max(3, repeat // 4)):
            started = time.perf_counter()
            await pilot.press("down")
            await pilot.pause()
            samples.append(time.perf_counter() - started)
        settled["pilot"] = samples
    return settled, first, contents

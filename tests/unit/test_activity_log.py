"""The activity log: bounded, one printable line per entry, and every entry in the log file too."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from virttui.cli.logfile import _setup_logging
from virttui.console.activity import MAX_TEXT, ActivityLog, Entry
from virttui.drivers.registry import state_dir


def test_it_keeps_only_the_newest_entries_oldest_first():
    activity = ActivityLog(limit=3)
    for n in range(5):
        activity.record(f"line {n}")
    assert [entry.text for entry in activity.entries()] == ["line 2", "line 3", "line 4"]
    assert len(activity) == 3 and activity.last_seq == 5
    assert [entry.text for entry in activity.entries(after=3)] == ["line 3", "line 4"]


def test_each_entry_has_the_injected_wall_clock_time():
    now = [1_700_000_000.0]
    activity = ActivityLog(clock=lambda: now[0])
    first = activity.record("a")
    now[0] += 5
    assert (first.when, activity.record("b").when) == (1_700_000_000.0, 1_700_000_005.0)


def test_text_from_a_host_becomes_one_printable_line_of_bounded_length():
    activity = ActivityLog()
    entry = activity.record("web\x1b[31m-01\tdown\nsecond line\r\nthird\x07" + "x" * 2000)
    assert entry.text.startswith("web?[31m-01 down second line third?xxx")
    assert entry.text.isprintable()
    assert len(entry.text) == MAX_TEXT and entry.text.endswith("…")


def test_severity_maps_to_the_log_level(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="virttui.activity")
    activity = ActivityLog()
    activity.record("started", "information")
    activity.record("slow host", "warning")
    activity.record("start failed", "error")
    activity.record("odd", "unknown")  # type: ignore[arg-type]
    got = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert got == [("virttui.activity", logging.INFO, "started"), ("virttui.activity", logging.WARNING, "slow host"),
                   ("virttui.activity", logging.ERROR, "start failed"), ("virttui.activity", logging.INFO, "odd")]
    assert activity.entries()[-1].severity == "information"


def test_the_logger_gets_the_cleaned_line_not_a_format_string(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="virttui.activity")
    ActivityLog().record("100%s done\nreally")
    assert [r.getMessage() for r in caplog.records] == ["100%s done really"]


def test_listeners_hear_each_entry_until_they_leave():
    activity = ActivityLog()
    heard: list[Entry] = []
    activity.subscribe(heard.append)
    activity.record("one")
    activity.unsubscribe(heard.append)
    activity.record("two")
    assert [entry.text for entry in heard] == ["one"]


@pytest.fixture
def root_logging() -> Iterator[None]:
    """The CLI's set-up changes the root logger: undone after the test."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def test_the_default_log_file_gets_activity_lines_but_not_debug_noise(root_logging: None):
    _setup_logging(None)  # as `virttui` without --log does
    ActivityLog().record("Start build-runner on hv1: done")
    ActivityLog().record("Start web-standby on hv2 failed: lease conflict", "error")
    logging.getLogger("virttui.drivers.virsh").debug("a debug line nobody asked for")
    with open(os.path.join(state_dir(), "virttui.log"), encoding="utf-8") as file:
        text = file.read()
    assert "INFO virttui.activity: Start build-runner on hv1: done" in text
    assert "ERROR virttui.activity: Start web-standby on hv2 failed: lease conflict" in text
    assert "a debug line" not in text

"""Ctrl+R's two lines: what it asked, and once every host answered, how many failed."""

from virttui.console.refresh import RefreshReport


def test_the_closing_line_comes_once_every_host_answered():
    report = RefreshReport()
    assert report.start(["a", "b", "c"]) == "Refresh: polling 3 hosts now…"
    assert report.answered("a", ok=True) is None
    assert report.answered("x", ok=True) is None  # not asked: an ordinary poll
    assert report.answered("b", ok=False) is None
    assert report.answered("c", ok=True) == "Refresh: 3 hosts polled, 1 failed"
    assert report.answered("c", ok=True) is None  # said once


def test_a_host_removed_meanwhile_is_not_waited_for():
    report = RefreshReport()
    report.start(["a", "b"])
    assert report.answered("a", ok=True) is None
    assert report.forget("b") == "Refresh: 1 host polled"

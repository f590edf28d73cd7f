"""Human-readable sizes: the unit is chosen by what is printed, not by the raw value."""

from __future__ import annotations

import pytest

from virttui.format import human_bytes


@pytest.mark.parametrize(("value", "shown"), [
    (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
    (1048575, "1.0 MiB"),  # 1023.999 KiB: "1024.0 KiB" before
    (1024 ** 3 - 1, "1.0 GiB"), (None, "-"), (5 * 1024 ** 5, "5.0 PiB"),
])
def test_sizes(value, shown):
    assert human_bytes(value) == shown


def test_a_sparkline_range_names_its_span_once_it_draws_a_line():
    from virttui.format import percent
    from virttui.screens.detail import _range

    assert _range([], percent) == "" and _range([5.0], percent) == ""
    assert _range([16.5, 5.4, 9.0], percent) == "0.0%–16.5% over 3 polls"  # drawn from zero, not from 5.4


def test_a_count_agrees_with_its_noun():
    from virttui.format import plural

    assert [plural(1, "domain"), plural(2, "domain"), plural(0, "host"), plural(3, "match")] == [
        "1 domain", "2 domains", "0 hosts", "3 matches"]

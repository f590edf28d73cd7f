"""Pilot tests: the console over the demo, keys pressed as the operator presses them."""

from __future__ import annotations

import pytest
from support.app import make_app

from virttui.console.app import VirtTUI
from virttui.demo import Demo


@pytest.fixture
def app(demo: Demo) -> VirtTUI:
    """The console over the demo, polled by the test (support.app.poll), not by timers."""
    return make_app(demo)

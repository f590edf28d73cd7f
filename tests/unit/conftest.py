"""Unit tests: drivers, lock code, config and views, without Textual's event loop (that is pilot/)."""

from __future__ import annotations

import pytest
from textual.app import App


@pytest.fixture(autouse=True)
def no_running_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit test that starts an App belongs in pilot/, where its waits and sizes are set up."""
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a unit test started a Textual App: move it to tests/pilot")

    monkeypatch.setattr(App, "run", refuse)
    monkeypatch.setattr(App, "run_test", refuse)

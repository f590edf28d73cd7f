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


@pytest.fixture
def settled_lease_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files a test wrote a moment ago read as if written long before, as a cluster's lease files
    are: the readers' clock runs past agent.RACY_SECONDS ahead, so read counts show the incremental
    passes alone (the racy rule stays on; it has its own tests in test_racy_reads)."""
    from support.clock import WallClock

    from virttui.locks import agent, embeddedfiles
    ahead = WallClock(ahead=agent.RACY_SECONDS + 1.0)
    monkeypatch.setattr(agent, "time", ahead)
    monkeypatch.setattr(embeddedfiles, "time", ahead)

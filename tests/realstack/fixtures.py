"""pytest plugin: the session-wide real stacks (two private libvirt test hosts each).

Loaded from tests/conftest.py via ``pytest_plugins = ["realstack.fixtures"]``.

* ``realstack``: two hosts without sanlock (starts in well under a second).
* ``sanlock_stack``: two more hosts with a sanlock daemon each, libvirt's sanlock lock plugin
  with automatic disk leases and one shared lease directory (starts in ~3.5 s).

Both can be alive in one session: they are independent runs (own namespaces, run directories and
lease directory).  A test that uses either gets the ``realstack`` marker.  If a stack cannot
start, the tests using it error out with the component and the tail of its log: they never skip.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from types import FrameType

import pytest

from realstack.harness import RealStack


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


_replaced: dict[int, object] = {}


def pytest_configure(config: pytest.Config) -> None:
    """A CI timeout's SIGTERM or a dropped terminal's SIGHUP ends the run like Ctrl+C, so the
    stacks' teardown runs; by default either signal killed pytest and left every daemon up. A
    signal the caller set otherwise (`nohup` ignores SIGHUP) is left as it is."""
    for number in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(number) is signal.SIG_DFL:
            _replaced[number] = signal.signal(number, _interrupt)


def pytest_unconfigure(config: pytest.Config) -> None:
    while _replaced:
        number, previous = _replaced.popitem()
        signal.signal(number, previous)


@pytest.fixture(scope="session")
def realstack() -> Iterator[RealStack]:
    stack = RealStack.start(2)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def sanlock_stack() -> Iterator[RealStack]:
    stack = RealStack.start(2, sanlock=True)
    try:
        yield stack
    finally:
        stack.stop()


STACK_FIXTURES = ("realstack", "sanlock_stack")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in STACK_FIXTURES):
            item.add_marker(pytest.mark.realstack)

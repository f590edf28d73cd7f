"""pytest plugin: the session-wide real stack (two private libvirt test hosts).

Loaded from tests/conftest.py via ``pytest_plugins = ["realstack.fixtures"]``.  A test that uses
the ``realstack`` fixture gets the ``realstack`` marker.  If the stack cannot start, the tests
using it error out with the component and the tail of its log: they never skip.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from realstack.harness import RealStack


@pytest.fixture(scope="session")
def realstack() -> Iterator[RealStack]:
    stack = RealStack.start(2)
    try:
        yield stack
    finally:
        stack.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "realstack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.realstack)

"""Textual's private parts virttui uses (virttui/widgets/compat.py) are all still there."""

from __future__ import annotations

import importlib
import inspect
import re
from importlib.metadata import version
from pathlib import Path

import pytest

from virttui.widgets.compat import PINNED_TEXTUAL, PRIVATE_MODULES, PRIVATE_NAMES


def test_the_installed_textual_is_the_pinned_one():
    assert version("textual") == PINNED_TEXTUAL
    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    assert f'"textual=={PINNED_TEXTUAL}"' in pyproject.read_text()


@pytest.mark.parametrize("module, names", sorted(PRIVATE_MODULES.items()))
def test_each_private_module_still_has_what_is_imported(module, names):
    loaded = importlib.import_module(module)
    assert [name for name in names if not hasattr(loaded, name)] == []


def _defined(cls: type, name: str) -> bool:
    """On the class (a method, a class attribute), or set on self by an __init__ of its MRO."""
    if hasattr(cls, name):
        return True
    assigned = re.compile(rf"self\.{re.escape(name)}\s*[:=]")
    return any(assigned.search(inspect.getsource(base.__init__)) for base in cls.__mro__
               if "__init__" in base.__dict__ and base.__module__.startswith("textual"))


@pytest.mark.parametrize("path, names", sorted(PRIVATE_NAMES.items()))
def test_each_private_name_still_exists(path, names):
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert [name for name in names if not _defined(cls, name)] == []


def test_a_name_that_is_not_there_is_found_missing():
    from textual.widgets import DataTable

    assert _defined(DataTable, "_row_locations") and not _defined(DataTable, "_no_such_thing")

"""The console's options in their plain spelling, read without argparse.

argparse's import and its first parse (gettext looking for message catalogues) cost about 3 ms of
a start. A console start written as the help shows it (`-c URI`, `--demo`, `--poll-interval 5`)
is read here into the namespace argparse would give. Any other argv (a subcommand, help, an
abbreviation, `--opt=value`, a value that starts with `-`, a bad number) is left to the grammar
in virttui.cli.parser, so its results and messages stay argparse's.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    import argparse

_FLAGS = {"--demo": "demo", "--debug": "debug"}
_VALUED = {"-c": "connect", "--connect": "connect", "--config": "config", "--poll-interval": "poll_interval",
           "--log": "log"}


def plain_console_args(argv: Sequence[str]) -> argparse.Namespace | None:
    """argv as argparse would parse it for the console, or None when only argparse should read it."""
    values: dict[str, object] = {"connect": None, "demo": False, "config": None, "poll_interval": None, "log": None,
                                 "debug": False, "command": None}
    tokens = iter(argv)
    for token in tokens:
        if token in _FLAGS:
            values[_FLAGS[token]] = True
            continue
        dest = _VALUED.get(token)
        value = next(tokens, None) if dest is not None else None
        if dest is None or value is None or value.startswith("-"):
            return None
        if dest == "connect":
            values["connect"] = [*(values["connect"] or []), value]  # type: ignore[misc]
        elif dest == "poll_interval":
            try:
                values[dest] = float(value)  # argparse's type=float, the same call
            except ValueError:
                return None
        else:
            values[dest] = value
    return cast("argparse.Namespace", SimpleNamespace(**values))  # read as argparse's: by attribute

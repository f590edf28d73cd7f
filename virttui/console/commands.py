"""The `:` command line's words: what each command is called, its completions, and parsing a line.

The main screen runs them (MainScreen.run_command); here is only the language, without Textual."""

from __future__ import annotations

from collections.abc import Iterable

from virttui import actiontable as registry

PANES = ("hosts", "domains", "disks", "leases")
VIEWS = ("zoom", "columns", "help", "activity", "refresh", "cleanup", "add", "remove", "mark", "quit")
SORTS = {"name": "name", "host": "host", "state": "state", "cpu": "cpu", "cpu%": "cpu", "mem": "mem",
         "memory": "mem", "vcpu": "vcpus", "vcpus": "vcpus"}
# the words an operator types for an action, beside its registry id ("force-off" for destroy)
ACTION_WORDS = {"force-off": "destroy", "forceoff": "destroy", "destroy": "destroy", "wake": "pmwakeup",
                "resume": "pause", "suspend": "pause"}


def action_of(word: str) -> str | None:
    """The registry id a typed word names (an id, an alias, or a label), or None."""
    word = word.lower()
    if word in ACTION_WORDS:
        return ACTION_WORDS[word]
    for spec in registry.ACTIONS:
        if spec.key and word in (spec.id, spec.label.lower(), spec.label.lower().replace(" ", "")):
            return spec.id
    return None


def parse(line: str) -> tuple[str, str]:
    """(command, argument) of a line: the first word lowercased, the rest as typed, stripped."""
    text = line.strip().lstrip(":").strip()
    word, _, rest = text.partition(" ")
    return word.lower(), rest.strip()


def completions(host_labels: Iterable[str]) -> list[str]:
    """Every whole command a line may complete to, in the order they are offered."""
    words = [f"host {label}" for label in ("all", *host_labels)]
    words += ["filter "] + [f"sort {name}" for name in ("cpu", "mem", "name", "host", "state", "vcpus")]
    words += list(PANES) + list(VIEWS)
    words += [spec.id for spec in registry.ACTIONS if spec.key]
    words += [word for word in ACTION_WORDS if word not in words]
    return words

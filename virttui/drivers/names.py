"""Names that travel between a host and a command line: checked before they go back, escaped when shown.

A name an operator types and a name a host reports (a snapshot, a pool, a volume, a network)
obey one rule before either becomes part of a command: printable, not empty, bounded. A name
read from a host that fails it is still shown, escaped, but nothing is ever done with it.
"""

from __future__ import annotations

from virttui.drivers.errors import OperationInvalid

MAX_NAME_CHARS = 1024  # far above any name libvirt's own tools create


def usable_name(name: str) -> bool:
    """Whether a name may go into a command: printable, not empty, not absurdly long."""
    return bool(name) and len(name) <= MAX_NAME_CHARS and name.isprintable()


def check_name(name: str, what: str = "name") -> str:
    """name itself, or OperationInvalid saying why it may not be used."""
    if not usable_name(name):
        raise OperationInvalid(f"a {what} must be printable, not empty and at most {MAX_NAME_CHARS} characters")
    return name


def escaped(text: str) -> str:
    """text with every non-printable character written as its escape (\\r, \\x7f, \\u2028): safe to show."""
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text)

"""Frozen records: frozen dataclasses whose __eq__, __hash__ and __repr__ are shared, not compiled.

Python 3.11's dataclass compiles each method it generates with an exec of its own; for the frozen
models on the console's start path that cost a few percent of the start (docs/performance.md).
`record` lets dataclass generate only __init__ and the frozen guards. Equality, hash and repr
read the fields through one operator.attrgetter per class, with dataclass's rules: equal only to
an instance of the very same class, fields with compare=False left out, hash=... honoured, and
the repr shows the repr=True fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar, cast, dataclass_transform, overload

_T = TypeVar("_T", bound=type)


def _no_fields(_instance: object) -> tuple[()]:
    return ()


def _getter(names: list[str]) -> Callable[[Any], tuple]:
    """The fields as a tuple, as dataclass compares and hashes them (a lone field too: a tuple
    compares its items by identity first, so a record holding nan equals itself)."""
    if not names:
        return _no_fields
    if len(names) == 1:
        get = attrgetter(names[0])
        return lambda instance: (get(instance),)
    return attrgetter(*names)


def _eq(self: Any, other: Any) -> bool:
    if other.__class__ is self.__class__:
        compared = self.__record_compared__
        return bool(compared(self) == compared(other))
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(self.__record_hashed__(self))


def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__record_shown__)
    return f"{self.__class__.__qualname__}({shown})"


def _finish(cls: _T, own: dict[str, Any]) -> _T:
    """The shared methods, where the class body did not define its own."""
    fields = dataclasses.fields(cls)
    cls.__record_compared__ = staticmethod(_getter([f.name for f in fields if f.compare]))  # type: ignore[attr-defined]
    cls.__record_hashed__ = staticmethod(_getter(  # type: ignore[attr-defined]
        [f.name for f in fields if (f.compare if f.hash is None else f.hash)]))
    cls.__record_shown__ = tuple(f.name for f in fields if f.repr)  # type: ignore[attr-defined]
    for name, method in (("__eq__", _eq), ("__hash__", _hash), ("__repr__", _repr)):
        if name not in own or (name == "__hash__" and own["__hash__"] is None and "__eq__" in own):
            setattr(cls, name, method)  # a body's own __eq__ leaves __hash__ None: dataclass hashes the fields
    return cls


@overload
def record(cls: _T, /) -> _T: ...


@overload
def record(*, slots: bool = False) -> Callable[[_T], _T]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def record(cls: _T | None = None, /, *, slots: bool = False) -> _T | Callable[[_T], _T]:
    """@record or @record(slots=True): as @dataclass(frozen=True), slots=... alike."""
    def wrap(target: _T) -> _T:
        made: type = dataclasses.dataclass(frozen=True, eq=False, repr=False, slots=slots)(target)
        return _finish(cast(_T, made), dict(vars(target)))

    return wrap if cls is None else wrap(cls)

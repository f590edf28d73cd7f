"""Frozen records: frozen dataclasses whose __eq__ and __hash__ are compiled at first use.

Python 3.11's dataclass compiles each method it generates with an exec of its own; for the frozen
models on the console's start path that cost a few percent of the start (docs/performance.md).
`record` lets dataclass generate only __init__ and the frozen guards. __eq__ and __hash__ are
compiled, from the same source dataclass would write, the first time one is called on the class:
a start compares few models, and a poll's hot classes get dataclass's speed. __repr__ is one
shared function (never hot). dataclass's rules hold: equal only to an instance of the very same
class, fields with compare=False left out, hash=... honoured, the repr=True fields shown.
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Callable
from typing import Any, TypeVar, cast, dataclass_transform, overload

_T = TypeVar("_T", bound=type)


def _as_tuple(owner: str, names: list[str]) -> str:
    """Source of the tuple of these fields, as dataclass writes it: (self.a,self.b,)."""
    return "(" + "".join(f"{owner}.{name}," for name in names) + ")"


def _compiled(cls: type, name: str, source: str) -> Callable[..., Any]:
    namespace: dict[str, Any] = {}
    exec(source, {}, namespace)  # noqa: S102 - field names are the class's own identifiers
    method = namespace[name]
    method.__qualname__ = f"{cls.__qualname__}.{name}"
    return cast(Callable[..., Any], method)


def _compile_eq(cls: type) -> Callable[..., Any]:
    names = [f.name for f in dataclasses.fields(cls) if f.compare]
    return _compiled(cls, "__eq__", (
        "def __eq__(self, other):\n"
        "    if other.__class__ is self.__class__:\n"
        f"        return {_as_tuple('self', names)} == {_as_tuple('other', names)}\n"
        "    return NotImplemented\n"))


def _compile_hash(cls: type) -> Callable[..., Any]:
    names = [f.name for f in dataclasses.fields(cls) if (f.compare if f.hash is None else f.hash)]
    return _compiled(cls, "__hash__", f"def __hash__(self):\n    return hash({_as_tuple('self', names)})\n")


def _at_first_use(cls: type, name: str, compile_method: Callable[[type], Callable[..., Any]]) -> Callable[..., Any]:
    """A stand-in that compiles the method, puts it on the class, and answers this first call."""
    def first_use(self: Any, *args: Any) -> Any:
        method = compile_method(cls)
        setattr(cls, name, method)
        return method(self, *args)

    first_use.__name__ = name
    first_use.__qualname__ = f"{cls.__qualname__}.{name}"
    return first_use


@reprlib.recursive_repr()
def _repr(self: Any) -> str:
    shown = ", ".join(f"{field.name}={getattr(self, field.name)!r}" for field in dataclasses.fields(self)
                      if field.repr)
    return f"{self.__class__.__qualname__}({shown})"


def _finish(cls: _T, own: dict[str, Any]) -> _T:
    """The methods, where the class body did not define its own."""
    if "__eq__" not in own:
        cls.__eq__ = _at_first_use(cls, "__eq__", _compile_eq)  # type: ignore[method-assign]
    if "__hash__" not in own or (own["__hash__"] is None and "__eq__" in own):
        # a body's own __eq__ leaves __hash__ None: dataclass hashes the fields then, too
        cls.__hash__ = _at_first_use(cls, "__hash__", _compile_hash)  # type: ignore[method-assign]
    if "__repr__" not in own:
        cls.__repr__ = _repr  # type: ignore[method-assign,assignment]
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

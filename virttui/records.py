"""Frozen records: frozen dataclasses whose generated methods are compiled at first use.

Python 3.11's dataclass compiles each method it generates with an exec of its own, six for a
frozen class; for the models on the console's start path that cost a few percent of the start
(docs/performance.md). `record` asks dataclass for the fields only. __init__, __eq__ and __hash__
are compiled, from the source dataclass would write, the first time one is called on the class;
the frozen guards are closures and __repr__ is one shared function. dataclass's rules hold: equal
only to an instance of the very same class, fields with compare=False left out, hash=...
honoured, the repr=True fields shown, __post_init__ called, assignment refused.
`@record(frozen=False)` is the same for a mutable holder of state, as @dataclass makes one.
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Callable
from typing import Any, TypeVar, cast, dataclass_transform, overload

_T = TypeVar("_T", bound=type)
_FACTORY = object()  # an __init__ argument not given, for a field with a default_factory


def _as_tuple(owner: str, names: list[str]) -> str:
    """Source of the tuple of these fields, as dataclass writes it: (self.a,self.b,)."""
    return "(" + "".join(f"{owner}.{name}," for name in names) + ")"


def _compiled(cls: type, name: str, source: str, names: dict[str, Any] | None = None) -> Callable[..., Any]:
    """The method `name` that source defines, with `names` (its defaults, its helpers) as its globals."""
    namespace: dict[str, Any] = {}
    exec(source, names or {}, namespace)  # noqa: S102 - field names are the class's own identifiers
    method = namespace[name]
    method.__qualname__ = f"{cls.__qualname__}.{name}"
    return cast(Callable[..., Any], method)


def _compile_init(cls: type) -> Callable[..., Any]:
    """dataclass's __init__: each field set (past the guard when frozen), a factory called for a field not given."""
    fields = dataclasses.fields(cls)
    frozen = cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    params, body = [], []
    defaults: dict[str, Any] = {"__record_setattr__": object.__setattr__, "__record_factory_marker__": _FACTORY}
    for field in fields:
        value = field.name
        if field.default_factory is not dataclasses.MISSING:
            defaults[f"__record_default_{field.name}__"] = field.default_factory
            params.append(f"{field.name}=__record_factory_marker__")
            value = (f"__record_default_{field.name}__() if {field.name} is __record_factory_marker__ "
                     f"else {field.name}")
        elif field.default is not dataclasses.MISSING:
            defaults[f"__record_default_{field.name}__"] = field.default
            params.append(f"{field.name}=__record_default_{field.name}__")
        else:
            params.append(field.name)
        body.append(f"    __record_setattr__(self, {field.name!r}, {value})\n" if frozen
                    else f"    self.{field.name} = {value}\n")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()\n")
    source = f"def __init__({', '.join(['self', *params])}):\n" + "".join(body or ["    pass\n"])
    return _compiled(cls, "__init__", source, defaults)


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
    def first_use(self: Any, *args: Any, **kwargs: Any) -> Any:
        method = compile_method(cls)
        setattr(cls, name, method)
        return method(self, *args, **kwargs)

    first_use.__name__ = name
    first_use.__qualname__ = f"{cls.__qualname__}.{name}"
    return first_use


@reprlib.recursive_repr()
def _repr(self: Any) -> str:
    shown = ", ".join(f"{field.name}={getattr(self, field.name)!r}" for field in dataclasses.fields(self)
                      if field.repr)
    return f"{self.__class__.__qualname__}({shown})"


def _frozen_guards(cls: type) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """dataclass's __setattr__ and __delattr__ for a frozen class, as closures rather than compiled."""
    names = frozenset(field.name for field in dataclasses.fields(cls))

    def __setattr__(self: Any, name: str, value: Any) -> None:  # noqa: N807
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)  # type: ignore[arg-type]  # mypy misreads a closure's class

    def __delattr__(self: Any, name: str) -> None:  # noqa: N807
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)  # type: ignore[arg-type]

    __setattr__.__qualname__ = f"{cls.__qualname__}.__setattr__"
    __delattr__.__qualname__ = f"{cls.__qualname__}.__delattr__"
    return __setattr__, __delattr__


def _slots_getstate(self: Any) -> list[Any]:
    return [getattr(self, field.name) for field in dataclasses.fields(self)]


def _slots_setstate(self: Any, state: list[Any]) -> None:
    for field, value in zip(dataclasses.fields(self), state, strict=True):
        object.__setattr__(self, field.name, value)  # past the frozen guard, as dataclass's own does


def _check_shape(target: type) -> None:
    """What record leaves to dataclass: plain fields, with a default or a factory or neither."""
    if any(hasattr(base, "__dataclass_fields__") for base in target.__mro__[1:]):
        raise TypeError(f"record {target.__name__}: a record does not inherit from a dataclass; use dataclass")
    if any("InitVar" in str(annotation) or "KW_ONLY" in str(annotation)
           for annotation in vars(target).get("__annotations__", {}).values()):
        raise TypeError(f"record {target.__name__}: InitVar and KW_ONLY are dataclass's; use dataclass")


def _finish(cls: _T, own: dict[str, Any], slots: bool, frozen: bool) -> _T:
    """The methods, where the class body did not define its own."""
    fields = dataclasses.fields(cls)
    if any(not field.init or field.kw_only for field in fields):
        raise TypeError(f"record {cls.__name__}: init=False and kw_only fields are dataclass's; use dataclass")
    if frozen and ("__setattr__" in own or "__delattr__" in own):
        raise TypeError(f"record {cls.__name__}: a frozen class cannot define __setattr__ or __delattr__")
    after_a_default = False  # dataclass's own check, made when __init__ is written: here, not at first use
    for field in fields:
        has_default = field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
        if after_a_default and not has_default:
            raise TypeError(f"non-default argument {field.name!r} follows default argument")
        after_a_default = after_a_default or has_default
    cls.__dataclass_params__.frozen = frozen  # type: ignore[attr-defined]  # what it is, for dataclass's checks
    if "__init__" not in own:
        cls.__init__ = _at_first_use(cls, "__init__", _compile_init)  # type: ignore[misc]
    if frozen:
        cls.__setattr__, cls.__delattr__ = _frozen_guards(cls)  # type: ignore[method-assign]
    if frozen and slots:  # dataclass gives a frozen slots class these, for pickle and copy to get past the guard
        if "__getstate__" not in own:
            cls.__getstate__ = _slots_getstate  # type: ignore[method-assign,assignment]
        if "__setstate__" not in own:
            cls.__setstate__ = _slots_setstate  # type: ignore[attr-defined]
    if "__eq__" not in own:
        cls.__eq__ = _at_first_use(cls, "__eq__", _compile_eq)  # type: ignore[method-assign]
    if not frozen:
        if "__hash__" not in own:  # dataclass's rule: a mutable class that compares by value is unhashable
            cls.__hash__ = None  # type: ignore[assignment]
    elif "__hash__" not in own or (own["__hash__"] is None and "__eq__" in own):
        # a body's own __eq__ leaves __hash__ None: dataclass hashes the fields then, too
        cls.__hash__ = _at_first_use(cls, "__hash__", _compile_hash)  # type: ignore[method-assign]
    if "__repr__" not in own:
        cls.__repr__ = _repr  # type: ignore[method-assign,assignment]
    return cls


@overload
def record(cls: _T, /) -> _T: ...


@overload
def record(*, slots: bool = False, frozen: bool = True) -> Callable[[_T], _T]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def record(cls: _T | None = None, /, *, slots: bool = False, frozen: bool = True) -> _T | Callable[[_T], _T]:
    """@record or @record(slots=True): as @dataclass(frozen=True), slots=... alike. @record(frozen=False)
    is @dataclass for a mutable holder of state: compared by value, unhashable, methods compiled at first use."""
    def wrap(target: _T) -> _T:
        _check_shape(target)
        if not target.__doc__:  # else dataclass writes one from inspect.signature: 2-3 ms at its first use
            target.__doc__ = f"{target.__name__}({', '.join(vars(target).get('__annotations__', {}))})"
        made: type = dataclasses.dataclass(init=False, eq=False, repr=False, slots=slots)(target)
        return _finish(cast(_T, made), dict(vars(target)), slots, frozen)

    return wrap if cls is None else wrap(cls)

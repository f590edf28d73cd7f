"""virttui.records.record behaves as @dataclass(frozen=True) does, for everything the models use."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from virttui.drivers.model import Disk, Domain, DomainState
from virttui.records import record


@record
class Point:
    x: int
    y: int = 0
    note: str = dataclasses.field(default="", compare=False)


@record(slots=True)
class Tag:
    name: str


@record
class Empty:
    pass


@dataclasses.dataclass(frozen=True)
class Reference:
    x: int
    y: int = 0
    note: str = dataclasses.field(default="", compare=False)


@record
class OwnEquality:
    value: int

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OwnEquality) and abs(self.value - other.value) <= 1


def test_equality_and_hash_follow_the_compared_fields_as_dataclass_does():
    assert Point(1, 2) == Point(1, 2, note="other")  # compare=False is left out
    assert Point(1, 2) != Point(1, 3) and Point(1, 2) != Point(2, 2)
    assert hash(Point(1, 2)) == hash(Point(1, 2, note="x"))
    assert len({Point(1, 2), Point(1, 2, note="x"), Point(2, 2)}) == 2
    assert Empty() == Empty() and hash(Empty()) == hash(Empty())
    assert Tag("a") == Tag("a") and Tag("a") != Tag("b") and hash(Tag("a")) == hash(Tag("a"))


class SubPoint(Point):
    pass


def test_an_instance_equals_only_the_same_class():
    assert Point(1, 2) != SubPoint(1, 2) and SubPoint(1, 2) == SubPoint(1, 2)  # not isinstance
    assert Point(1, 2) != Reference(1, 2)
    assert Point(1, 2) != (1, 2)
    assert Point(1, 2).__eq__((1, 2)) is NotImplemented


def test_repr_matches_dataclass():
    assert repr(Point(1, 2, note="n")) == repr(Reference(1, 2, note="n")).replace("Reference", "Point")
    assert repr(Tag("a")) == "Tag(name='a')"
    assert repr(Empty()) == "Empty()"


def test_records_stay_frozen_dataclasses():
    point = Point(1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        Tag("a").name = "b"
    assert dataclasses.is_dataclass(point) and dataclasses.replace(point, y=7) == Point(1, 7)
    assert dataclasses.astuple(point) == (1, 2, "")
    assert not hasattr(Tag("a"), "__dict__")  # slots=True
    assert pickle.loads(pickle.dumps(point)) == point
    assert pickle.loads(pickle.dumps(Tag("a"))) == Tag("a")
    assert Point.__match_args__ == ("x", "y", "note")


@dataclasses.dataclass(frozen=True)
class OwnEqualityReference:
    value: int

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OwnEqualityReference) and abs(self.value - other.value) <= 1


@record
class Lone:
    value: float


def test_a_class_keeps_the_methods_it_defines():
    assert OwnEquality(1) == OwnEquality(2) and OwnEquality(1) != OwnEquality(3)
    # its own __eq__ without a __hash__: dataclass hashes the fields, and so does record
    assert hash(OwnEquality(1)) == hash(OwnEquality(1)) != hash(OwnEquality(2))
    assert hash(OwnEquality(1)) == hash(OwnEqualityReference(1))


def test_a_lone_field_compares_as_a_tuple_does():
    nan = float("nan")
    assert Lone(nan) == Lone(nan)  # the same object: equal, as in dataclass's (self.value,) == (other.value,)
    assert Lone(nan) == dataclasses.replace(Lone(nan), value=nan)
    assert Lone(1.0) == Lone(1.0) and Lone(1.0) != Lone(2.0) and hash(Lone(1.0)) == hash(Lone(1.0))


def test_the_models_compare_as_before():
    disk = Disk(target="vda", source="/img/a.qcow2")
    domain = Domain(uuid="u", name="a", state=DomainState.RUNNING, vcpus=1, memory_kib=1024, max_memory_kib=1024,
                    disks=(disk,))
    assert domain == dataclasses.replace(domain) and domain != dataclasses.replace(domain, name="b")
    assert hash(domain) == hash(dataclasses.replace(domain))
    assert "name='a'" in repr(domain)


def test_eq_and_hash_are_compiled_at_first_use_and_kept():
    @record
    class Fresh:
        a: int
        b: str = ""

    stand_in = Fresh.__dict__["__eq__"]
    assert Fresh(1, "x") == Fresh(1, "x") and Fresh(1, "x") != Fresh(1, "y")
    compiled = Fresh.__dict__["__eq__"]
    assert compiled is not stand_in and compiled.__qualname__.endswith("Fresh.__eq__")
    assert Fresh(2) == Fresh(2) and Fresh.__dict__["__eq__"] is compiled  # compiled once
    hash_stand_in = Fresh.__dict__["__hash__"]
    assert hash(Fresh(1, "x")) == hash((1, "x"))  # dataclass's hash: the tuple of the fields
    assert Fresh.__dict__["__hash__"] is not hash_stand_in


@record
class Node:
    children: list


def test_a_record_that_holds_itself_reprs_as_dataclass_does():
    node = Node([])
    node.children.append(node)
    assert repr(node) == "Node(children=[...])"


@record
class Made:
    items: list = dataclasses.field(default_factory=list)
    seen: tuple = ()

    def __post_init__(self) -> None:
        if len(self.seen) > 2:
            raise ValueError("too many")


@dataclasses.dataclass(frozen=True)
class MadeReference:
    items: list = dataclasses.field(default_factory=list)
    seen: tuple = ()

    def __post_init__(self) -> None:
        if len(self.seen) > 2:
            raise ValueError("too many")


def test_init_is_dataclasss_frozen_init():
    assert Made().items == [] and Made().items is not Made().items  # a fresh list for each
    given = [1]
    assert Made(given).items is given and Made(items=given, seen=(1,)).seen == (1,)
    with pytest.raises(ValueError, match="too many"):  # __post_init__ runs
        Made(seen=(1, 2, 3))
    for args, kwargs in (((1, 2, 3), {}), ((), {"nope": 1}), (([],), {"items": []})):
        with pytest.raises(TypeError) as ours:
            Made(*args, **kwargs)
        with pytest.raises(TypeError) as theirs:
            MadeReference(*args, **kwargs)
        assert str(ours.value).replace("Made.", "") == str(theirs.value).replace("MadeReference.", "")
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'x'"):
        Point()  # type: ignore[call-arg]
    assert Point(1).y == 0 and Point(x=1, y=2, note="n").note == "n"


def test_init_is_compiled_at_first_use_and_kept():
    @record
    class Lazy:
        a: int

    stand_in = Lazy.__dict__["__init__"]
    assert Lazy(1).a == 1
    compiled = Lazy.__dict__["__init__"]
    assert compiled is not stand_in and compiled.__qualname__.endswith("Lazy.__init__")
    assert Lazy(2).a == 2 and Lazy.__dict__["__init__"] is compiled


def test_the_frozen_guards_are_dataclasss():
    point, reference = Point(1), Reference(1)
    for target in (point, reference):
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'x'"):
            target.x = 2  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'other'"):
            target.other = 2  # type: ignore[attr-defined]
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field 'x'"):
            del target.x  # type: ignore[misc]
    sub = SubPoint(1)
    sub.extra = 3  # type: ignore[attr-defined]  # a plain subclass may add attributes, as dataclass allows
    assert sub.extra == 3  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        sub.x = 2  # type: ignore[misc]
    assert dataclasses.fields(Point) and Point.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_what_record_leaves_to_dataclass_is_refused_at_once():
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
        @record
        class Misordered:
            a: int = 0
            b: int  # type: ignore[misc]

    with pytest.raises(TypeError, match="does not inherit from a dataclass"):
        @record
        class Derived(Reference):
            z: int = 0

    with pytest.raises(TypeError, match="init=False"):
        @record
        class Hidden:
            a: int = dataclasses.field(default=0, init=False)

    with pytest.raises(TypeError, match="cannot define __setattr__"):
        @record
        class Guarded:
            a: int

            def __setattr__(self, name: str, value: object) -> None:
                pass


def test_a_record_without_a_docstring_is_named_by_its_fields():
    @record
    class Bare:
        a: int
        b: str = ""

    assert Bare.__doc__ == "Bare(a, b)" and Point.__doc__ == "Point(x, y, note)"


@record(frozen=False)
class Holder:
    name: str
    seen: list = dataclasses.field(default_factory=list)
    count: int = 0


@dataclasses.dataclass
class HolderReference:
    name: str
    seen: list = dataclasses.field(default_factory=list)
    count: int = 0


def test_a_mutable_record_is_dataclasss_mutable_class():
    holder = Holder("a")
    holder.count += 1
    holder.seen.append(1)
    assert (holder.name, holder.seen, holder.count) == ("a", [1], 1) and Holder("b").seen == []
    assert holder == Holder("a", [1], 1) and holder != Holder("a") and holder != HolderReference("a", [1], 1)
    assert Holder.__hash__ is None and HolderReference.__hash__ is None  # compared by value: unhashable
    with pytest.raises(TypeError):
        hash(holder)
    assert repr(holder) == repr(HolderReference("a", [1], 1)).replace("HolderReference", "Holder")
    assert dataclasses.replace(holder, count=5).count == 5 and not Holder.__dataclass_params__.frozen  # type: ignore[attr-defined]
    del holder.count  # as a dataclass allows: the class default shows through
    assert holder.count == 0


def test_a_frozen_slots_record_keeps_its_own_pickling():
    @record(slots=True)
    class Packed:
        a: int

        def __getstate__(self) -> list[int]:
            return [self.a * 10]

        def __setstate__(self, state: list[int]) -> None:
            object.__setattr__(self, "a", state[0] // 10)

    assert Packed.__getstate__(Packed(2)) == [20]
    assert copy.copy(Packed(3)) == Packed(3)

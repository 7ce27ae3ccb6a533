"""`@datatype` behaves as the frozen dataclasses it replaces on the start-up path."""

from __future__ import annotations

import pytest

from imcache.core.datatype import datatype, field, replace


@datatype
class Point:
    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)


@datatype(frozen=False)
class Counter:
    hits: int = 0


def test_fields_positional_keyword_and_defaults() -> None:
    assert Point(1, 2).y == 2 and Point(x=1).y == 0
    assert Point(1) == Point(x=1, y=0, tags=[])
    assert Point(1) != Point(2) and Point(1) != (1, 0, [])


def test_each_record_gets_its_own_default_from_a_factory() -> None:
    first, second = Point(1), Point(1)
    first.tags.append("a")
    assert second.tags == []


def test_frozen_records_refuse_changes_and_hash_by_value() -> None:
    point = Point(1, 2, tags=[])
    with pytest.raises(AttributeError, match="frozen"):
        point.x = 5  # type: ignore[misc]
    with pytest.raises(AttributeError, match="frozen"):
        del point.x  # type: ignore[misc]
    assert hash(Point(3, 4, ())) == hash(Point(3, 4, ()))  # type: ignore[arg-type]
    assert len({Point(3, 4, ()), Point(3, 4, ())}) == 1  # type: ignore[arg-type]


def test_mutable_records_change_and_are_unhashable() -> None:
    counter = Counter()
    counter.hits += 1
    assert counter == Counter(1)
    with pytest.raises(TypeError):
        hash(counter)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "missing argument 'x'"),
        ((1, 2, [], 4), {}, "takes 3 positional"),
        ((1,), {"x": 2}, "multiple values for 'x'"),
        ((1,), {"z": 2}, "unexpected arguments"),
    ],
)
def test_wrong_arguments_are_refused(args: tuple, kwargs: dict, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        Point(*args, **kwargs)


def test_replace_copies_with_changes_and_refuses_unknown_fields() -> None:
    point = Point(1, 2, ["a"])
    moved = replace(point, y=5)
    assert moved == Point(1, 5, ["a"]) and point.y == 2
    with pytest.raises(TypeError, match="no fields"):
        replace(point, z=1)


def test_repr_names_the_fields() -> None:
    assert repr(Point(1)) == "Point(x=1, y=0, tags=[])"


def test_a_field_without_default_after_one_with_is_refused() -> None:
    with pytest.raises(TypeError, match="'b' without a default"):

        @datatype
        class Bad:
            a: int = 0
            b: int

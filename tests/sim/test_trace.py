"""The trace: canonical reduction and hashing."""

from __future__ import annotations

import enum

import attrs
import pytest

from keel.sim import Kind, Record, Trace
from keel.sim.trace import plain


@attrs.frozen
class Point:
    x: int
    y: frozenset[str]


class Colour(enum.Enum):
    RED = "red"


def test_sets_and_maps_reduce_the_same_whatever_their_insertion_order():
    assert plain({"b", "a", "c"}) == plain({"c", "b", "a"}) == ["a", "b", "c"]
    assert plain({2: "x", 1: "y"}) == plain({1: "y", 2: "x"}) == [[1, "y"], [2, "x"]]


def test_attrs_instances_and_enums_reduce_to_their_fields_and_values():
    assert plain(Point(1, frozenset({"q", "p"}))) == ["Point", {"x": 1, "y": ["p", "q"]}]
    assert plain((Colour.RED, Kind.SEND, True, None, 1.5, b"z")) == ["red", "send", True, None, 1.5, b"z"]


def test_objects_without_a_canonical_form_are_refused():
    with pytest.raises(TypeError, match="object cannot go into a simulation trace"):
        plain([object()])


def trace_of(*records: Record) -> Trace:
    trace = Trace()
    for record in records:
        trace.add(record)
    return trace


def test_hash_is_incremental_and_sensitive_to_every_field():
    first, second = Record(0.5, Kind.SEND, "a", "b", ("m", 1)), Record(0.7, Kind.DROP, "a", "b", ("m", 2), "loss")
    growing = trace_of(first)
    growing.hash()
    growing.add(second)
    assert growing.hash() == trace_of(first, second).hash()
    for changed in (attrs.evolve(second, time=0.8), attrs.evolve(second, detail="cut"), attrs.evolve(second, data=("m", 3))):
        assert trace_of(first, changed).hash() != growing.hash()


def test_records_read_as_one_line_each():
    trace = trace_of(Record(0.5, Kind.SEND, "a", "b", ("m", 1)), Record(0.6, Kind.DELIVER, "b", "a", ("m", 1)))
    assert trace.tail(2).splitlines() == [
        "0.500000 send    a->b         ('m', 1)",
        "0.600000 deliver a->b         ('m', 1)",
    ]
    assert [r.kind for r in trace.since(1)] == [Kind.DELIVER]

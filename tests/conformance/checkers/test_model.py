"""The key-value model: one register per key, and what its partition may leave out."""

from __future__ import annotations

import pytest

from keel.conformance.checkers import KeyValueModel

from .histories import o

MODEL = KeyValueModel()


@pytest.mark.parametrize(("state", "op", "expected"), [
    (None, o("read", at=0, to=1, result=None), (True, None)),
    (3, o("read", at=0, to=1, result=4), (False, 3)),
    (3, o("write", 5, at=0, to=1), (True, 5)),
    (3, o("cas", (3, 6), at=0, to=1), (True, 6)),
    (3, o("cas", (None, 6), at=0, to=1), (False, 3)),
    (None, o("cas", (None, 6), at=0, to=1), (True, 6)),
    (3, o("delete", at=0, to=1), (True, None)),
])
def test_each_key_is_a_register_that_starts_absent(state, op, expected):
    assert MODEL.step(state, op) == expected


def test_reads_and_cas_of_a_value_with_itself_are_read_only():
    assert MODEL.read_only(o("read", at=0, to=1)) and MODEL.read_only(o("cas", (2, 2), at=0, to=1))
    assert not MODEL.read_only(o("write", 2, at=0, to=1)) and not MODEL.read_only(o("cas", (1, 2), at=0, to=1))


def test_partition_splits_by_key_in_key_order():
    ops = [o("write", 1, at=0, to=1, key="b"), o("write", 2, at=0, to=1, key="a"), o("read", at=2, to=3, key="b")]
    assert [(key, [op.f for op in part]) for key, part in MODEL.partition(ops)] == [
        ("a", ["write"]), ("b", ["write", "read"])]


def test_partition_drops_timed_out_writes_whose_value_nobody_observed():
    seen = o("write", 1, at=0, key="k")
    unseen = o("write", 2, at=0, key="k")
    expected_by_cas = o("cas", (None, 3), at=0, key="k")
    delete = o("delete", at=0, key="k")
    reads = [o("read", at=5, to=6, result=1, key="k"), o("cas", (3, 4), at=7, to=8, key="k")]
    (_, part), = MODEL.partition([seen, unseen, expected_by_cas, delete, *reads])
    assert part == [seen, expected_by_cas, delete, *reads]


def test_partition_refuses_operations_the_model_does_not_know():
    with pytest.raises(ValueError, match="f 'append'"):
        MODEL.partition([o("append", 1, at=0, to=1)])
    with pytest.raises(ValueError, match=r"cas value \(1, 2, 3\): a pair \[expected, new\]"):
        MODEL.partition([o("cas", (1, 2, 3), at=0, to=1)])

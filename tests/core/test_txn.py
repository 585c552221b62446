"""Txn compares and the checks that refuse a txn before any of it runs.

Compares follow etcd: `value`, `version`, `create`, `mod` and `lease`,
with an absent key at version, create and mod revision 0 and lease 0. An
absent key has no value: as in etcd, a value compare on it fails whatever
the operator (absence is tested with `version == 0`). The pre-checks refuse what etcd refuses ("duplicate
key given in txn request"): two writes to one key, including a put under a
deleted range.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel.core.api import Compare, Delete, KeyValue, LeaseGrant, Put, Range, Txn
from keel.core.txn import TARGETS, check_ops, holds
from keel.core.api.system import reserved
from keel.errors import KeelError, LeaseExpired, ReservedKey

RUNS = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
KV = KeyValue(b"k", b"m", create_revision=3, mod_revision=7, version=2, lease=9)


def no_leases(lease: int) -> bool:
    return False


# --- compares ------------------------------------------------------------------------------


@pytest.mark.parametrize(("target", "number", "op", "expected"), [
    ("version", 2, "==", True),
    ("version", 3, "==", False),
    ("version", 2, "!=", False),
    ("version", 3, "<", True),
    ("version", 2, "<", False),
    ("version", 1, ">", True),
    ("create", 3, "==", True),
    ("create", 7, "==", False),
    ("create", 4, "<", True),
    ("mod", 7, "==", True),
    ("mod", 3, "==", False),
    ("mod", 6, ">", True),
    ("lease", 9, "==", True),
    ("lease", 0, "!=", True),
    ("lease", 10, ">", False),
])
def test_a_numeric_compare_reads_its_own_field_of_the_key(target, number, op, expected):
    assert holds(Compare(b"k", target, op, number=number), KV) is expected


@pytest.mark.parametrize(("op", "operand", "expected"), [
    ("==", b"m", True),
    ("==", b"n", False),
    ("!=", b"n", True),
    ("<", b"n", True),
    ("<", b"m", False),
    (">", b"l", True),
    (">", b"m\x00", False),
])
def test_a_value_compare_orders_bytes(op, operand, expected):
    assert holds(Compare(b"k", "value", op, value=operand), KV) is expected


def test_a_value_compare_is_bytewise_not_numeric():
    kv = KeyValue(b"k", b"10", 1, 1, 1)
    assert holds(Compare(b"k", "value", "<", value=b"9"), kv)


def test_a_value_compare_ignores_the_number_operand():
    assert holds(Compare(b"k", "value", "==", value=b"m", number=99), KV)


def test_a_numeric_compare_ignores_the_value_operand():
    assert holds(Compare(b"k", "version", "==", value=b"junk", number=2), KV)


@pytest.mark.parametrize("target", ["version", "create", "mod", "lease"])
def test_an_absent_key_has_zero_in_every_numeric_field(target):
    """etcd: a compare on a missing key reads an empty KeyValue (all zeros)."""
    assert holds(Compare(b"k", target, "==", number=0), None)
    assert not holds(Compare(b"k", target, ">", number=0), None)
    assert holds(Compare(b"k", target, "<", number=1), None)


def test_create_revision_zero_is_the_put_if_absent_test():
    assert holds(Compare(b"k", "create", "==", number=0), None)
    assert not holds(Compare(b"k", "create", "==", number=0), KV)


@pytest.mark.parametrize("op", ["==", "!=", "<", ">"])
def test_a_value_compare_on_an_absent_key_fails_whatever_the_operator(op):
    """etcd: a value compare on a key that does not exist always fails (it cannot tell absent from empty)."""
    assert holds(Compare(b"k", "value", op, value=b""), None) is False


def test_an_empty_value_is_not_an_absent_key():
    kv = KeyValue(b"k", b"", 1, 1, 1)
    assert holds(Compare(b"k", "value", "==", value=b""), kv)


def test_an_unknown_target_is_refused_naming_it():
    with pytest.raises(KeelError, match=r"target 'size' is not one of value, version, create, mod, lease"):
        holds(Compare(b"k", "size", "==", number=1), KV)


@pytest.mark.parametrize("op", ["<=", ">=", "=", ""])
def test_an_unknown_operator_is_refused_naming_it(op):
    with pytest.raises(KeelError, match=rf"operator {op!r} is not one of"):
        holds(Compare(b"k", "version", op, number=1), KV)


def test_an_unknown_operator_is_refused_also_on_an_absent_key():
    with pytest.raises(KeelError, match="operator"):
        holds(Compare(b"k", "value", ">=", value=b"a"), None)


@given(number=st.integers(-3, 12), version=st.integers(1, 10), target=st.sampled_from(TARGETS[1:]))
@RUNS
def test_exactly_one_of_less_equal_greater_holds_for_a_present_key(number, version, target):
    kv = KeyValue(b"k", b"v", version, version + 1, version, version)
    outcomes = [holds(Compare(b"k", target, op, number=number), kv) for op in ("<", "==", ">")]
    assert outcomes.count(True) == 1
    assert holds(Compare(b"k", target, "!=", number=number), kv) is not outcomes[1]


# --- pre-checks --------------------------------------------------------------------------------


def test_puts_deletes_and_ranges_of_distinct_keys_pass():
    check_ops([Put(b"a", b"1"), Delete(b"b"), Range(b"a"), Delete(b"c", prefix=True)], no_leases)


def test_a_key_put_twice_is_refused():
    with pytest.raises(KeelError, match=r"key b'a' is written twice"):
        check_ops([Put(b"a", b"1"), Put(b"a", b"2")], no_leases)


@pytest.mark.parametrize("ops", [
    [Put(b"a", b"1"), Delete(b"a")],
    [Delete(b"a"), Put(b"a", b"1")],
    [Delete(b"a", prefix=True), Put(b"ab", b"1")],
    [Put(b"a\xff", b"1"), Delete(b"a", prefix=True)],
    [Delete(b"x", prefix=True), Put(b"x", b"1")],
    [Delete(b"\xff", prefix=True), Put(b"\xff\xff\x01", b"1")],
])
def test_a_put_inside_a_deleted_range_is_refused_whatever_the_order(ops):
    with pytest.raises(KeelError, match="both put and deleted"):
        check_ops(ops, no_leases)


@pytest.mark.parametrize("op", [
    Put(b"keel/data/map", b"junk"),
    Delete(b"keel/buckets/default"),
    Delete(b"keel/", prefix=True),
    Delete(b"ke", prefix=True),
    Delete(b"", prefix=True),
])
def test_a_write_to_keels_own_keys_is_refused_naming_the_prefix(op):
    with pytest.raises(ReservedKey, match="keys under keel/ are keel's own"):
        check_ops([Put(b"fine", b"1"), op], no_leases)


@pytest.mark.parametrize("ops", [
    [Delete(b"ab"), Put(b"a", b"1")],  # a single delete covers one key only
    [Delete(b"ab", prefix=True), Put(b"a", b"1")],
    [Delete(b"a", prefix=True), Put(b"b", b"1")],
    [Delete(b"a"), Delete(b"a"), Delete(b"a", prefix=True)],  # deletes may overlap: nothing is written twice
    [Range(b"a"), Put(b"a", b"1"), Range(b"a", prefix=True)],
])
def test_writes_that_do_not_overlap_pass(ops):
    check_ops(ops, no_leases)


def test_a_put_under_a_missing_lease_is_refused():
    with pytest.raises(LeaseExpired, match=r"put b'a': lease 4 does not exist"):
        check_ops([Put(b"a", b"1", lease=4)], lambda lease: lease == 5)


def test_a_put_under_an_existing_lease_or_none_passes():
    asked = []
    check_ops([Put(b"a", b"1", lease=5), Put(b"b", b"1")], lambda lease: asked.append(lease) or lease == 5)
    assert asked == [5]  # lease 0 means no lease: nothing to look up


@pytest.mark.parametrize("op", [Txn(), LeaseGrant(1.0), Compare(b"a", "version", "==")])
def test_only_put_delete_and_range_run_inside_a_transaction(op):
    with pytest.raises(KeelError, match=rf"{type(op).__name__} cannot run inside a transaction"):
        check_ops([Put(b"a", b"1"), op], no_leases)


@given(puts=st.lists(st.binary(max_size=3), max_size=3, unique=True),
       deletes=st.lists(st.tuples(st.binary(max_size=3), st.booleans()), max_size=3))
@RUNS
def test_check_ops_refuses_exactly_the_puts_a_delete_covers(puts, deletes):
    """Against the naive rule: a put conflicts when a delete names its key or a prefix of it."""
    deletes = [(k, p) for k, p in deletes if not reserved(k, prefix=p)]  # keel's own keys: refused whatever else
    ops = [Put(k, b"v") for k in puts] + [Delete(k, prefix=p) for k, p in deletes]
    conflict = any(k.startswith(d) if p else k == d for k in puts for d, p in deletes)
    if conflict:
        with pytest.raises(KeelError, match="both put and deleted"):
            check_ops(ops, no_leases)
    else:
        check_ops(ops, no_leases)

"""What an LWW bucket promises: the highest timestamp wins everywhere, deletes are tombstones."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import keel.plugins
from keel.conformance.store_laws import check_store
from keel.contract import Kind
from keel.data.hlc import Timestamp
from keel.data.store import ApplyContext, Operation, UnsupportedOperation, decode_record, encode_record

from keel_store_lww import LwwOptions, LwwStore, create, plugin
from keel_store_lww.store import MAX_VALUE_BYTES

SECOND = 1_000_000
T0 = 1_700_000_000 * SECOND


def write(store, record, op, wall, node="n1", logical=0):
    return store.apply(record, op, ApplyContext(stamp=Timestamp(wall, logical, node), node=node))


def put(value):
    return Operation("put", (value,))


def test_keel_loads_lww_from_the_entry_point():
    plugins = keel.plugins.load()
    record = plugins.get(Kind.STORE, "lww", field="store")
    assert (record.create, record.options) == (create, LwwOptions)
    (installed,) = [item for item in plugins.installed if item.name == "lww"]
    assert installed.distribution == "keel-store-lww"
    assert installed.contract == plugin.KEEL_CONTRACT == "1.3"


def test_the_higher_timestamp_wins_whichever_replica_merges_first():
    store = create()
    early = write(store, None, put(b"early"), T0, node="n2")
    late = write(store, None, put(b"late"), T0 + 1, node="n1")
    assert store.read(store.merge(early, late), Operation("get")) == b"late"
    assert store.read(store.merge(late, early), Operation("get")) == b"late"


def test_a_tie_in_time_goes_to_the_higher_node_id_on_every_replica():
    store = create()
    a = write(store, None, put(b"from n1"), T0, node="n1")
    b = write(store, None, put(b"from n2"), T0, node="n2")
    assert store.merge(a, b) == store.merge(b, a) == b


def test_a_delete_is_a_tombstone_that_hides_older_values_and_loses_to_newer_ones():
    store = create()
    value = write(store, None, put(b"v"), T0)
    gone = write(store, value, Operation("delete"), T0 + 1)
    assert store.read(store.merge(value, gone), Operation("get")) is None
    again = write(store, gone, put(b"w"), T0 + 2)
    assert store.read(store.merge(gone, again), Operation("get")) == b"w"


def test_a_tombstone_is_collectable_only_after_the_grace_period():
    store = create(LwwOptions(tombstone_grace=60))
    gone = write(store, None, Operation("delete"), T0)
    assert not store.collectable(gone, Timestamp(T0 + 59 * SECOND, 0, "n1"))
    assert store.collectable(gone, Timestamp(T0 + 61 * SECOND, 0, "n1"))
    value = write(store, None, put(b"v"), T0)
    assert not store.collectable(value, Timestamp(T0 + 10**6 * SECOND, 0, "n1"))


@pytest.mark.parametrize(("op", "message"), [
    (Operation("incr", (1,)), "no operation 'incr'"),
    (Operation("put", ()), "put takes 1 argument(s), not 0"),
    (Operation("put", ("text",)), "value must be bytes, not str"),
    (Operation("put", (b"x" * (MAX_VALUE_BYTES + 1),)), f"exceeds {MAX_VALUE_BYTES}"),
    (Operation("delete", (b"x",)), "delete takes 0 argument(s)"),
])
def test_a_bad_operation_is_refused_naming_what_is_wrong(op, message):
    with pytest.raises(UnsupportedOperation, match="lww: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        create().check(op)


@pytest.mark.parametrize("record", [None, [], [1, 2, 3], [[T0, 0], b"v"], [[T0, 0, "n1"], "text"], {"v": 1}])
def test_a_record_not_of_its_shape_is_refused(record):
    with pytest.raises(ValueError):
        create().check_record(record)


def test_bad_options_name_the_field():
    with pytest.raises(ValueError, match="tombstone_grace"):
        LwwOptions(tombstone_grace=0)


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.sampled_from(["n1", "n2", "n3"]),
                          st.one_of(st.none(), st.binary(max_size=3))), min_size=1, max_size=8),
       st.randoms(use_true_random=False))
def test_replicas_given_the_same_writes_in_any_order_hold_the_same_record(writes, rng):
    store = create()
    records = [[[T0 + wall, logical, node], value] for wall, logical, node, value in writes]
    shuffled = records[:]
    rng.shuffle(shuffled)
    one, two = records[0], shuffled[0]
    for r in records[1:]:
        one = store.merge(one, r)
    for r in shuffled[1:]:
        two = store.merge(two, r)
    assert encode_record(one) == encode_record(two)
    assert decode_record(encode_record(one), "record") == one


@pytest.mark.seeds(20)
def test_the_store_keeps_the_laws_of_merge(seed):
    assert check_store(create(), seed=seed) == []


class TieByArrival(LwwStore):
    """A planted bug: equal wall times go to whichever record arrived last."""

    def merge(self, a, b):
        return a if a[0][0] > b[0][0] else b


def test_the_laws_catch_a_tie_broken_by_arrival_order():
    caught = [seed for seed in range(20) if check_store(TieByArrival(LwwOptions()), seed=seed)]
    assert len(caught) >= 15, caught
    (first, *_) = check_store(TieByArrival(LwwOptions()), seed=caught[0])
    assert "not commutative" in first or "different orders" in first or "associative" in first


class ValueBlind(LwwStore):
    """A planted bug: merge keeps the first record when stamps tie, ignoring node ids."""

    def merge(self, a, b):
        return a if a[0][:2] >= b[0][:2] else b


def test_the_laws_catch_a_tie_that_ignores_the_node_id():
    assert any(check_store(ValueBlind(LwwOptions()), seed=seed) for seed in range(20))

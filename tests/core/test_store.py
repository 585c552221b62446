"""The keyspace: revisions, per-key counters, prefix ranges, the event history and its compaction.

The rules are etcd's (mvcc): one revision per request that changes
something, shared by all its writes; `create_revision`, `mod_revision` and
`version` per key; a delete ends a key's life, so a new put starts it
again at version 1. The model test holds the store against a dict.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel.core.api import Event, KeyValue
from keel.core.store import KeyStore, prefix_end
from keel.errors import Compacted, KeelError

RUNS = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
KEYS = st.sampled_from((b"", b"a", b"a\x00", b"ab", b"abc", b"b", b"a\xff", b"a\xff\xff", b"\xff", b"\xff\xff\x01"))


def put(store: KeyStore, key: bytes, value: bytes = b"v", lease: int = 0) -> int:
    writes = store.writes()
    writes.put(key, value, lease)
    return writes.close()


def delete(store: KeyStore, key: bytes, *, prefix: bool = False) -> tuple[list[KeyValue], int]:
    writes = store.writes()
    gone = writes.delete(key, prefix=prefix)
    return gone, writes.close()


def store_with(*keys: bytes) -> KeyStore:
    store = KeyStore()
    for key in keys:
        put(store, key)
    return store


# --- revisions and per-key counters --------------------------------------------------------


def test_a_fresh_store_is_at_revision_zero_and_empty():
    store = KeyStore()
    assert (store.revision, store.compacted, len(store)) == (0, 0, 0)
    assert store.get(b"a") is None


def test_each_put_moves_the_revision_by_one():
    """etcd: the revision grows by one per request that changes the keyspace."""
    store = KeyStore()
    assert [put(store, k) for k in (b"a", b"b", b"a")] == [1, 2, 3]
    assert store.revision == 3


def test_all_writes_of_one_batch_share_one_revision():
    """etcd: every write of one txn happens at the txn's revision."""
    store = store_with(b"x")
    writes = store.writes()
    writes.put(b"a", b"1", 0)
    writes.put(b"b", b"2", 0)
    writes.delete(b"x")
    assert writes.close() == 2
    assert store.get(b"a").mod_revision == store.get(b"b").mod_revision == 2
    assert [e.kv.mod_revision for e in store.events(b"", prefix=True, start=2)] == [2, 2, 2]


def test_a_put_keeps_the_create_revision_moves_the_mod_revision_and_counts_the_version():
    store = KeyStore()
    put(store, b"k", b"1")
    put(store, b"other")
    put(store, b"k", b"2", lease=7)
    assert store.get(b"k") == KeyValue(b"k", b"2", create_revision=1, mod_revision=3, version=2, lease=7)


def test_a_put_returns_the_key_as_it_was():
    store = store_with(b"k")
    writes = store.writes()
    assert writes.put(b"k", b"new", 0) == KeyValue(b"k", b"v", 1, 1, 1, 0)
    assert writes.put(b"fresh", b"x", 0) is None


def test_a_deleted_key_put_again_starts_over_at_version_one():
    """etcd: a delete ends the key's generation; the next put creates it anew."""
    store = store_with(b"k", b"k")
    delete(store, b"k")
    put(store, b"k", b"again")
    assert store.get(b"k") == KeyValue(b"k", b"again", create_revision=4, mod_revision=4, version=1, lease=0)


def test_a_delete_of_nothing_does_not_move_the_revision():
    """etcd: a delete that removes no key is no change, so no revision and no event."""
    store = store_with(b"a")
    gone, revision = delete(store, b"missing")
    assert (gone, revision, store.revision) == ([], 1, 1)
    gone, revision = delete(store, b"zz", prefix=True)
    assert (gone, revision) == ([], 1)
    assert store.history_length() == 1


def test_a_batch_that_deletes_nothing_leaves_the_next_batch_at_the_next_revision():
    store = store_with(b"a")
    delete(store, b"missing")
    assert put(store, b"b") == 2


def test_a_delete_returns_the_deleted_keys_with_their_values():
    store = KeyStore()
    put(store, b"a", b"1")
    put(store, b"ab", b"2")
    gone, revision = delete(store, b"a", prefix=True)
    assert [(kv.key, kv.value) for kv in gone] == [(b"a", b"1"), (b"ab", b"2")]
    assert revision == 3
    assert len(store) == 0


def test_a_prefix_delete_removes_only_the_keys_under_the_prefix():
    store = store_with(b"a", b"a\xff", b"ab", b"b", b"`", b"\xff")
    gone, _ = delete(store, b"a", prefix=True)
    assert [kv.key for kv in gone] == [b"a", b"ab", b"a\xff"]  # in key order
    assert [kv.key for kv in store.range(b"", prefix=True)[0]] == [b"`", b"b", b"\xff"]


def test_a_single_delete_does_not_touch_keys_that_extend_it():
    store = store_with(b"a", b"ab")
    delete(store, b"a")
    assert store.get(b"a") is None and store.get(b"ab") is not None


def test_one_batch_refuses_to_write_a_key_twice():
    """etcd refuses a txn that writes one key twice: its two events would share a revision."""
    store = KeyStore()
    writes = store.writes()
    writes.put(b"k", b"1", 0)
    with pytest.raises(KeelError, match=r"b'k' is written twice"):
        writes.put(b"k", b"2", 0)


def test_one_batch_refuses_a_put_of_a_key_it_deleted():
    store = store_with(b"k")
    writes = store.writes()
    writes.delete(b"k")
    with pytest.raises(KeelError, match="written twice"):
        writes.put(b"k", b"2", 0)


# --- prefix_end and ranges ----------------------------------------------------------------


@pytest.mark.parametrize(("prefix", "end"), [
    (b"a", b"b"),
    (b"ab", b"ac"),
    (b"a\xff", b"b"),
    (b"a\xff\xff", b"b"),
    (b"\x00", b"\x01"),
    (b"\xfe", b"\xff"),
    (b"\xff", None),
    (b"\xff\xff", None),
    (b"", None),
])
def test_prefix_end_is_the_smallest_key_above_the_prefix(prefix, end):
    assert prefix_end(prefix) == end


@given(prefix=st.binary(max_size=4), key=st.binary(max_size=6))
@RUNS
def test_prefix_end_bounds_exactly_the_keys_that_start_with_the_prefix(prefix, key):
    end = prefix_end(prefix)
    inside = key >= prefix and (end is None or key < end)
    assert inside == key.startswith(prefix)


def test_a_range_of_one_key_finds_it_or_nothing():
    store = store_with(b"a", b"ab")
    kvs, count = store.range(b"a")
    assert ([kv.key for kv in kvs], count) == ([b"a"], 1)
    assert store.range(b"zz") == ([], 0)


def test_a_prefix_range_is_in_key_order():
    store = store_with(b"b2", b"a", b"b1", b"b10", b"c")
    kvs, count = store.range(b"b", prefix=True)
    assert [kv.key for kv in kvs] == [b"b1", b"b10", b"b2"]
    assert count == 3


def test_a_limited_range_counts_every_key_in_the_range():
    """etcd: `count` is the number of keys in the range, also those past `limit`."""
    store = store_with(b"k1", b"k2", b"k3", b"x")
    kvs, count = store.range(b"k", prefix=True, limit=2)
    assert [kv.key for kv in kvs] == [b"k1", b"k2"]
    assert count == 3


def test_the_empty_prefix_ranges_over_every_key():
    store = store_with(b"", b"a", b"\xff\xff")
    assert [kv.key for kv in store.range(b"", prefix=True)[0]] == [b"", b"a", b"\xff\xff"]


def test_an_all_ff_prefix_reaches_the_end_of_the_keyspace():
    store = store_with(b"\xfe", b"\xff", b"\xff\x00", b"\xff\xff\xff")
    assert [kv.key for kv in store.range(b"\xff", prefix=True)[0]] == [b"\xff", b"\xff\x00", b"\xff\xff\xff"]


@given(keys=st.lists(KEYS, max_size=12), prefix=KEYS, limit=st.integers(0, 4))
@RUNS
def test_a_prefix_range_agrees_with_a_dict_filter(keys, prefix, limit):
    store = KeyStore()
    model: dict[bytes, bytes] = {}
    for i, key in enumerate(keys):
        put(store, key, b"%d" % i)
        model[key] = b"%d" % i
    expected = sorted((k, v) for k, v in model.items() if k.startswith(prefix))
    kvs, count = store.range(prefix, prefix=True, limit=limit)
    assert count == len(expected)
    assert [(kv.key, kv.value) for kv in kvs] == (expected[:limit] if limit else expected)


# --- the history ----------------------------------------------------------------------------


def test_the_history_holds_every_change_in_order():
    store = KeyStore()
    put(store, b"a", b"1")
    put(store, b"a", b"2")
    delete(store, b"a")
    events = list(store.events(b"a", prefix=False, start=1))
    assert [(e.kind, e.kv.value, e.kv.mod_revision, e.kv.version) for e in events] == [
        ("put", b"1", 1, 1), ("put", b"2", 2, 2), ("delete", b"", 3, 0)]


def test_a_delete_event_carries_the_delete_revision_and_the_key_it_ended():
    store = KeyStore()
    put(store, b"a", lease=5)
    put(store, b"b")
    delete(store, b"a")
    (event,) = store.events(b"a", prefix=False, start=3)
    assert event == Event("delete", KeyValue(b"a", b"", create_revision=1, mod_revision=3, version=0, lease=5))


def test_events_start_at_the_revision_asked_for():
    store = store_with(b"a", b"b", b"c")
    assert [e.kv.key for e in store.events(b"", prefix=True, start=2)] == [b"b", b"c"]
    assert list(store.events(b"", prefix=True, start=4)) == []


def test_events_on_a_key_skip_other_keys_and_events_under_a_prefix_skip_keys_outside():
    store = store_with(b"a", b"ab", b"b", b"a")
    assert [e.kv.mod_revision for e in store.events(b"a", prefix=False, start=1)] == [1, 4]
    assert [e.kv.key for e in store.events(b"a", prefix=True, start=1)] == [b"a", b"ab", b"a"]


def test_compaction_forgets_the_history_before_its_revision_and_keeps_that_revision():
    """etcd: compacting at revision r removes what is older than r; a watch from r still works."""
    store = store_with(b"a", b"b", b"c", b"d")
    store.compact(2)
    assert store.compacted == 2
    assert store.history_length() == 3
    assert [e.kv.key for e in store.events(b"", prefix=True, start=2)] == [b"b", b"c", b"d"]


@pytest.mark.parametrize("start", [0, 1])
def test_a_watch_from_a_compacted_revision_raises_compacted(start):
    """A watcher that asks for forgotten events must learn it, not silently miss them."""
    store = store_with(b"a", b"b", b"c")
    store.compact(2)
    with pytest.raises(Compacted, match=rf"revision {start}: the history before 2"):
        list(store.events(b"", prefix=True, start=start))


def test_compaction_keeps_the_live_keys_and_the_revision():
    store = store_with(b"a", b"a", b"b")
    store.compact(3)
    assert store.revision == 3
    assert store.get(b"a") == KeyValue(b"a", b"v", 1, 2, 2, 0)
    assert put(store, b"c") == 4


def test_compaction_in_the_future_is_refused():
    store = store_with(b"a")
    with pytest.raises(KeelError, match=r"revision 2 is in the future \(current revision 1\)"):
        store.compact(2)
    assert store.compacted == 0


def test_compaction_to_a_compacted_revision_is_refused():
    store = store_with(b"a", b"b")
    store.compact(2)
    with pytest.raises(KeelError, match=r"revision 1 is already compacted \(compacted to 2\)"):
        store.compact(1)
    with pytest.raises(KeelError, match="already compacted"):
        store.compact(2)


def test_compaction_keeps_or_drops_the_events_of_one_batch_together():
    store = store_with(b"x")
    writes = store.writes()
    writes.put(b"a", b"1", 0)
    writes.put(b"b", b"1", 0)
    writes.close()
    put(store, b"c")
    store.compact(2)
    assert [e.kv.key for e in store.events(b"", prefix=True, start=2)] == [b"a", b"b", b"c"]
    store.compact(3)
    assert [e.kv.key for e in store.events(b"", prefix=True, start=3)] == [b"c"]


# --- dump and load ----------------------------------------------------------------------


def test_a_loaded_dump_is_the_same_store():
    store = store_with(b"a", b"b", b"c")
    delete(store, b"b")
    store.compact(2)
    loaded = KeyStore.load(*store.dump())
    assert loaded.dump() == store.dump()
    assert list(loaded.events(b"", prefix=True, start=3)) == list(store.events(b"", prefix=True, start=3))
    assert put(loaded, b"d") == put(store, b"d") == 5


def test_a_loaded_dump_finds_events_by_revision():
    """Loading rebuilds the revision index the history is searched by."""
    store = store_with(b"a", b"b", b"c")
    loaded = KeyStore.load(*store.dump())
    assert [e.kv.key for e in loaded.events(b"", prefix=True, start=3)] == [b"c"]
    loaded.compact(3)
    assert loaded.history_length() == 1


# --- the store against a model ----------------------------------------------------------


writes_ops = st.tuples(st.sampled_from(("put", "delete", "delete_prefix")), KEYS, st.sampled_from((0, 1, 2)))


@given(batches=st.lists(st.lists(writes_ops, min_size=1, max_size=3), max_size=15))
@RUNS
def test_the_store_agrees_with_a_model_of_etcd_revisions(batches):
    """A dict of key -> KeyValue, one revision per batch that changed anything, one event per change.

    An operation that would write a key its batch already wrote is left
    out (refusing it is the txn checks' job, tested above).
    """
    store = KeyStore()
    model: dict[bytes, KeyValue] = {}
    history: list[Event] = []
    for batch in batches:
        writes = store.writes()
        at = store.revision + 1
        touched: set[bytes] = set()
        for kind, key, lease in batch:
            if kind == "put":
                hits = [key]
            else:
                hits = sorted(k for k in model if (k.startswith(key) if kind == "delete_prefix" else k == key))
            if touched & set(hits):
                continue
            touched |= set(hits)
            if kind == "put":
                before = model.get(key)
                assert writes.put(key, b"%d" % at, lease) == before
                model[key] = KeyValue(key, b"%d" % at, before.create_revision if before else at, at,
                                      before.version + 1 if before else 1, lease)
                history.append(Event("put", model[key]))
                continue
            assert writes.delete(key, prefix=kind == "delete_prefix") == [model[k] for k in hits]
            for k in hits:
                old = model.pop(k)
                history.append(Event("delete", KeyValue(k, b"", old.create_revision, at, 0, old.lease)))
        expected = at if touched else at - 1
        assert writes.close() == expected
        assert store.revision == expected
        assert {kv.key: kv for kv in store.range(b"", prefix=True)[0]} == model
    assert list(store.events(b"", prefix=True, start=1)) == history


def test_trimming_keeps_the_newest_events_in_whole_revisions():
    store = store_with(b"a", b"b", b"c", b"d", b"e")
    store.trim(2)
    assert store.compacted == 4
    assert [e.kv.key for e in store.events(b"", prefix=True, start=4)] == [b"d", b"e"]
    store.trim(2)
    assert store.compacted == 4  # nothing more to forget

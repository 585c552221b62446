"""Anti-entropy exchanges: they find exactly the keys that differ, and cost bytes in proportion to them."""

from __future__ import annotations

import functools
import pathlib
import random
import re

import cbor2
import pytest

import keel.data.merkle
import keel.data.tree_sync
from keel import wire
from keel.data.merkle import ZERO, node_of, record_digest, slot_of
from keel.data.records import RecordFile, Write
from keel.data.sync_cost import MemoryReplica, sync_cost
from keel.data.tree_sync import Children, Entries, SyncBegin, SyncResult, SyncStep, TreeSync, exchange
from keel.errors import WireError

from .files import BUCKET


def _expected(a: MemoryReplica, b: MemoryReplica) -> frozenset[bytes]:
    """The keys `a` must send `b`: those `b` lacks or holds with another digest."""
    return frozenset(k for k, d in a.digests.items() if b.digests.get(k) != d)


def _diverged(rng: random.Random) -> tuple[MemoryReplica, MemoryReplica]:
    """Two replicas from one history that then took different writes, some of them the same."""
    depth_a, depth_b = rng.choice([0, 1, 2, 3]), rng.choice([0, 1, 2, 3])
    base = {b"key-%d" % rng.randrange(100_000): rng.randbytes(16) for _ in range(rng.choice([0, 10, 300, 3000]))}
    a, b = MemoryReplica(base.items(), depth=depth_a), MemoryReplica(base.items(), depth=depth_b)
    keys = list(base) or [b"key-0"]
    for _ in range(rng.choice([0, 1, 5, 50, 500])):
        side = rng.choice([(a,), (b,), (a, b)])
        key = rng.choice(keys) if rng.random() < 0.7 else b"new-%d" % rng.randrange(10**9)
        digest = None if rng.random() < 0.3 else rng.randbytes(16)
        for replica in side:
            replica.put(key, digest)
    return a, b


@pytest.mark.seeds(40)
def test_an_exchange_finds_exactly_the_keys_each_side_must_send(seed):
    rng = random.Random(seed)
    a, b = _diverged(rng)
    list_at = rng.choice([0, 1, 3, 8, 30])
    run = exchange(a.sync(list_at=list_at), b.sync(list_at=list_at))
    assert a.sends(run.initiator) == _expected(a, b)
    assert b.sends(run.responder) == _expected(b, a)
    if a.tree.root == b.tree.root:
        assert run.messages == 2


@pytest.mark.seeds(10)
def test_replicas_that_trade_what_an_exchange_found_agree(seed):
    rng = random.Random(seed)
    a, b = _diverged(rng)
    run = exchange(a.sync(), b.sync())
    to_b = {k: a.digests[k] for k in a.sends(run.initiator)}
    to_a = {k: b.digests[k] for k in b.sends(run.responder)}
    for key in to_b.keys() | to_a.keys():  # a stand-in merge: the larger digest wins, on both sides alike
        merged = max(d for d in (to_b.get(key), to_a.get(key), a.digests.get(key), b.digests.get(key)) if d)
        a.put(key, merged)
        b.put(key, merged)
    assert a.digests == b.digests and a.tree == MemoryReplica(b.digests.items(), depth=a.tree.depth).tree
    assert exchange(a.sync(), b.sync()).messages == 2


def test_equal_replicas_trade_only_their_roots():
    a = MemoryReplica((b"k%d" % i, record_digest(b"%d" % i)) for i in range(5000))
    run = exchange(a.sync(), a.copy().sync())
    nothing = SyncResult(frozenset(), ())
    assert (run.messages, run.initiator, run.responder) == (2, nothing, nothing)
    assert run.bytes < 120  # two tags, a root and a count


def test_a_missing_partition_is_sent_as_one_range_not_as_keys():
    full = MemoryReplica((b"k%d" % i, record_digest(b"%d" % i)) for i in range(20_000))
    run = exchange(MemoryReplica().sync(), full.sync())
    assert run.responder.ranges == ((0, 2**32),) and run.responder.keys == frozenset()
    assert run.initiator == SyncResult(frozenset(), ())
    assert run.bytes < 150


def test_an_empty_replica_asks_for_everything_as_one_range():
    full = MemoryReplica((b"k%d" % i, record_digest(b"%d" % i)) for i in range(20_000))
    run = exchange(full.sync(), MemoryReplica().sync())
    assert run.initiator.ranges == ((0, 2**32),) and run.initiator.keys == frozenset()
    assert run.messages == 3 and run.bytes < 250


def _traced(a: TreeSync, b: TreeSync) -> list[SyncBegin | SyncStep]:
    msgs: list[SyncBegin | SyncStep] = [a.begin()]
    sides, turn = (b, a), 0
    while (reply := sides[turn].receive(msgs[-1])) is not None:
        msgs.append(reply)
        turn ^= 1
    return msgs


def test_a_replica_holding_a_few_keys_of_a_large_partition_gets_ranges_and_nobody_loads_much():
    full = MemoryReplica((b"k%d" % i, record_digest(b"%d" % i)) for i in range(20_000))
    few = MemoryReplica((k, full.digests[k]) for k in [b"k1", b"k2", b"k3"])
    loads: list[int] = []

    def counted(replica):
        def load(lo, hi):
            found = replica.load(lo, hi)
            loads.append(len(found))
            return found
        return TreeSync(replica.tree, load)

    big, small = counted(full), counted(few)
    msgs = _traced(big, small)
    assert max(len(e.keys) for m in msgs if isinstance(m, SyncStep) for e in m.entries) <= 8
    assert max(loads) <= 30  # a leaf's worth (20,000 keys over 4096 leaves), never the partition
    assert small.result() == SyncResult(frozenset(), ())
    assert len(big.result().keys) <= 8 * 3 and full.sends(big.result()) == frozenset(full.digests) - set(few.digests)


def test_bytes_grow_with_the_differences_not_with_the_data():
    """Issue 10: 100,000 keys with 10 different cost about what 1,000 keys with 10 different do.

    Each difference costs a path down the tree, one level per factor of 16
    in the data, so 100 times the data costs at most a few times the bytes,
    while 100 times the differences costs tens of times the bytes.
    """
    small, large, many = sync_cost(1_000, 10), sync_cost(100_000, 10), sync_cost(100_000, 1_000)
    assert small.found == large.found == 10 and many.found == 1_000
    assert large.bytes < 3 * small.bytes
    assert large.bytes < large.full_bytes / 100
    assert many.bytes > 20 * large.bytes
    assert many.bytes < many.full_bytes / 4


def _file_side(records: RecordFile, partition: int) -> TreeSync:
    return TreeSync(records.tree(BUCKET, partition), functools.partial(records.entries, BUCKET, partition))


def _outgoing(records: RecordFile, partition: int, result: SyncResult) -> list[tuple[bytes, bytes]]:
    """The records a sync result makes `records` send: its keys, then its ranges streamed page by page."""
    out = [(k, records.get(BUCKET, partition, k)) for k in sorted(result.keys)]
    for lo, hi in result.ranges:
        after = None
        while True:
            page = records.scan(BUCKET, partition, after, slots=(lo, hi), limit=50)
            out.extend(page.items)
            if page.resume is None:
                break
            after = page.resume
    return out


def test_two_record_files_converge_through_an_exchange(tmp_path):
    with RecordFile.open(tmp_path / "a.db", "a") as a, RecordFile.open(tmp_path / "b.db", "b") as b:
        common = [Write(BUCKET, 9, b"k%d" % i, b"v%d" % i) for i in range(2000)]
        a.write_batch(common + [Write(BUCKET, 9, b"only-a", b"x"), Write(BUCKET, 9, b"k5", b"a's")], 1)
        b.write_batch(common + [Write(BUCKET, 9, b"only-b", b"y"), Write(BUCKET, 9, b"k7", None)], 1)
        b.write_batch([Write(BUCKET, 9, b"b%d" % i, b"z") for i in range(300)], 2)
        a.write_batch([Write(BUCKET, 8, b"k1", b"another partition")], 2)
        run = exchange(_file_side(a, 9), _file_side(b, 9))
        to_b, to_a = _outgoing(a, 9, run.initiator), _outgoing(b, 9, run.responder)
        assert {k for k, _ in to_b} == {b"only-a", b"k5", b"k7"}
        assert {k for k, _ in to_a} == {b"only-b", b"k5"} | {b"b%d" % i for i in range(300)}
        for target, received in ((a, to_a), (b, to_b)):  # a stand-in merge: the larger record wins
            target.write_batch([Write(BUCKET, 9, k, max(r, target.get(BUCKET, 9, k) or b"")) for k, r in received], 3)
        assert a.entries(BUCKET, 9, 0, 2**32) == b.entries(BUCKET, 9, 0, 2**32)
        assert a.tree(BUCKET, 9) == b.tree(BUCKET, 9)
        assert exchange(_file_side(a, 9), _file_side(b, 9)).messages == 2


# --- the messages ------------------------------------------------------------------


def test_sync_messages_round_trip_the_wire():
    step = SyncStep(
        children=[Children(2, 100, bytes(range(16)) * 16, range(16))],
        entries=[Entries.of(8, 5, [(b"a", b"d" * 16), (b"b", b"e" * 16)]), Entries.of(1, 3, [])],
        want=[b"x", b"y"],
    )
    for msg in (step, SyncStep(), SyncBegin(ZERO, 0)):
        assert wire.decode(wire.encode(msg)) == msg


@pytest.mark.parametrize("fields, problem", [
    ({"children": [{"level": 1, "index": 2, "values": b"\0" * 15, "counts": [0] * 16}]}, "16-byte values"),
    ({"children": [{"level": 1, "index": 2, "values": b"\0" * 256, "counts": [0] * 15}]}, "16 at a time"),
    ({"children": [{"level": 1, "index": 16, "values": b"\0" * 256, "counts": [0] * 16}]}, "outside level 1"),
    ({"children": [{"level": 8, "index": 0, "values": b"\0" * 256, "counts": [0] * 16}]}, "no children"),
    ({"children": [{"level": 9, "index": 0, "values": b"\0" * 256, "counts": [0] * 16}]}, "outside 0..8"),
    ({"children": [{"level": 1, "index": 0, "values": b"\0" * 256, "counts": [-1] + [0] * 15}]}, "non-negative"),
    ({"entries": [{"level": 0, "index": 0, "keys": [b"a"], "digests": b"\0" * 15}]}, "need 16 bytes"),
])
def test_malformed_sync_messages_are_wire_errors(fields, problem):
    with pytest.raises(WireError, match=problem):
        wire.decode(cbor2.dumps(["keel.data.sync.step", fields]))


def test_a_listed_key_outside_its_node_is_a_wire_error():
    replica = MemoryReplica([(b"k", ZERO)])
    wrong = (node_of(slot_of(b"elsewhere"), 1) + 1) % 16
    side = replica.sync()
    with pytest.raises(WireError, match="outside node"):
        side.receive(SyncStep(entries=[Entries.of(1, wrong, [(b"elsewhere", ZERO)])]))


def test_the_tree_and_the_exchange_import_no_io():
    """STYLE §2: sans-I/O cores import no trio, socket, time, os, threading (nor sqlite3)."""
    io = re.compile(r"^\s*(import|from)\s+(trio|socket|time|os|threading|sqlite3)\b", re.MULTILINE)
    for module in (keel.data.merkle, keel.data.tree_sync):
        assert not io.search(pathlib.Path(module.__file__).read_text()), module.__name__

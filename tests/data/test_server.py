"""The data server's mechanics: quorum writes and reads, read repair, refusals, typed errors, durability."""

from __future__ import annotations

import pytest

from keel.data.api import Coordinate, DataCall, ReplicaMerge
from keel.data.bucket import BucketSpec
from keel.data.partition_map import PartitionMap, Placement
from keel.data.placement import place, ready_all

from .cluster import Cluster


def test_a_write_acknowledged_by_w_replicas_is_read_back_from_any_node():
    c = Cluster()
    reply = c.call("d1", b"k", "put", b"v")
    assert c.value(reply) is None and reply.replicas >= 2
    for node in c.ids:
        assert c.value(c.call(node, b"k", "get")) == b"v"
    assert all(b"k" in c.held(node) for node in c.ids)


def test_a_write_succeeds_with_one_replica_down_and_fails_naming_the_count_with_two():
    c = Cluster()
    c.crash("d3")
    assert c.value(c.call("d1", b"k", "put", b"v")) is None
    c.crash("d2")
    assert c.call("d1", b"k", "put", b"w", timeout=1.0) is None  # waits for a second replica
    c.advance(1.5)
    (reply,) = c.replies.values()
    assert reply.kind == "too_few_replicas"
    assert "1 of 3 replicas acknowledged within 1 s, 2 needed" in reply.message


def test_a_read_repairs_a_replica_that_missed_a_write():
    c = Cluster()
    c.crash("d3")
    c.call("d1", b"k", "put", b"v")
    c.start("d3")  # back, without the write
    assert b"k" not in c.held("d3")
    assert c.value(c.call("d3", b"k", "get", r=3)) == b"v"
    assert c.held("d3")[b"k"] == c.held("d1")[b"k"]


def test_what_a_node_acknowledged_survives_its_restart():
    c = Cluster()
    c.call("d1", b"k", "put", b"v")
    for node in c.ids:
        c.crash(node)
        c.start(node)
    assert all(c.held(node)[b"k"] for node in c.ids)
    assert c.value(c.call("d2", b"k", "get")) == b"v"


def test_a_restarted_node_stamps_above_what_it_stamped_before():
    c = Cluster()
    c.call("d1", b"k", "put", b"old")
    before = c.servers["d1"].clock.high_water
    c.crash("d1")
    c.start("d1")
    # A timestamp asked for at physical time 0 (a clock set back) still orders after the last incarnation's.
    assert c.servers["d1"].clock.now(0).wall > before
    c.call("d1", b"k", "put", b"new")
    assert c.value(c.call("d2", b"k", "get", r=3)) == b"new"


def test_a_node_that_holds_no_replica_hands_the_call_to_one_that_does():
    c = Cluster(("d1", "d2", "d3", "d4"), placements=[Placement(owners=("d1", "d2", "d3"))] * 8)
    assert c.value(c.call("d4", b"k", "put", b"v")) is None
    assert b"k" not in c.held("d4")
    assert c.value(c.call("d4", b"k", "get")) == b"v"


def test_a_replica_merge_to_a_node_that_is_no_replica_is_refused_with_its_epoch():
    c = Cluster(("d1", "d2", "d3", "d4"), placements=[Placement(owners=("d1", "d2", "d3"))] * 8)
    c.servers["d4"].receive("d1", ReplicaMerge(7, "default", 0, b"k", b"", (1, 0, "d1"), 1))
    (refused,) = [m for dst, m in c.servers["d4"].poll().send if dst == "d1"]
    assert (refused.id, refused.epoch) == (7, 1) and "not a replica of partition 0" in refused.reason


@pytest.mark.parametrize(("kwargs", "kind", "message"), [
    ({"bucket": "nosuch"}, "unknown_bucket", "bucket 'nosuch' does not exist"),
    ({"bucket": "crdt"}, "plugin", "uses store 'nostore', which data node d1 lacks"),
    ({"op": "incr"}, "unsupported_operation", "lww: no operation 'incr'"),
    ({"w": 4}, "error", "w=4: from 1 to n=3"),
    ({"timeout": 0.0}, "error", "timeout 0 s"),
    ({"key": b""}, "error", "key: 1 to 4096 bytes"),
])
def test_a_bad_call_gets_a_typed_one_line_error(kwargs, kind, message):
    c = Cluster(buckets=(BucketSpec("default", "lww"), BucketSpec("crdt", "nostore")))
    key = kwargs.pop("key", b"k")
    op = kwargs.pop("op", "put")
    reply = c.call("d1", key, op, b"v", **kwargs)
    assert reply.kind == kind, reply
    assert message in reply.message and "\n" not in reply.message


def test_a_record_a_peer_sends_that_the_store_refuses_is_dropped_and_reported():
    c = Cluster()
    c.servers["d2"].receive("d1", ReplicaMerge(3, "default", 0, b"k", b"\x83\x01\x02\x03", (1, 0, "d1"), 1))
    out = c.servers["d2"].poll()
    assert not out.persist and not out.send
    (event,) = out.events
    assert event.src == "d1" and "lww record" in event.reason


def test_anti_entropy_brings_a_replica_that_missed_writes_level_without_any_read():
    c = Cluster(partitions=4)
    c.crash("d3")
    for i in range(40):
        c.call("d1", f"k{i}".encode(), "put", f"v{i}".encode())
    c.call("d2", b"k0", "delete")
    c.start("d3")
    assert len(c.held("d3")) == 0
    for _ in range(40):  # 20 s of ticks: each node starts an exchange every 1–3 s
        c.advance(0.5)
    assert c.held("d3") == c.held("d1") == c.held("d2")
    assert sum(server.synced for server in c.servers.values()) > 0


def test_anti_entropy_sends_only_what_differs():
    c = Cluster(partitions=1)
    for i in range(200):
        c.call("d1", f"k{i}".encode(), "put", b"v")
    c.crash("d3")
    c.call("d1", b"late", "put", b"v")
    c.start("d3")
    sent = []
    original = c.servers["d1"].poll

    def counting():
        out = original()
        sent.extend(m for _, m in out.send if isinstance(m, ReplicaMerge) and m.id == 0)
        return out

    c.servers["d1"].poll = counting
    for _ in range(40):
        c.advance(0.5)
    assert c.held("d3") == c.held("d1")
    assert {m.key for m in sent} <= {b"late"}  # never the 200 keys both held


def test_a_joiner_is_streamed_the_partition_reports_ready_and_the_leaver_lets_go_losing_nothing():
    nodes = ("d1", "d2", "d3", "d4")
    first = place(None, nodes[:3], 8, 3)
    c = Cluster(nodes, placements=list(first.placements))
    for i in range(300):
        c.call("d1", f"k{i}".encode(), "put", f"v{i}".encode())
    moving = place(first, nodes, 8, 3)
    c.follow(moving)
    joins = {p for p, placement in enumerate(moving.placements) if "d4" in placement.joining}
    assert joins
    for i in range(300, 320):  # writes during the move reach the joiner too
        c.call("d2", f"k{i}".encode(), "put", f"v{i}".encode())
    for _ in range(240):
        c.advance(0.25)
        if {p for node, p, epoch in c.ready if node == "d4" and epoch == moving.epoch} == joins:
            break
    assert {p for node, p, epoch in c.ready if node == "d4" and epoch == moving.epoch} == joins
    settled = ready_all(moving, [(p, "d4") for p in joins])
    c.follow(settled)
    leavers = {n for p in joins for n in moving.placements[p].leaving}
    for p in joins:
        assert "d4" in settled.readers_for(p)
    for node in leavers:
        kept = {pp for (_b, pp, _k) in c.servers[node].records.held}
        assert not kept & (joins - set(settled.partitions_of(node)))  # let go of what moved away
    for i in range(320):
        assert c.value(c.call("d4", f"k{i}".encode(), "get", r=3)) == f"v{i}".encode()


def test_a_call_handed_to_a_node_that_cannot_take_it_is_answered_with_the_error_not_raised():
    c = Cluster(("d1", "d2", "d3", "d4"), placements=[Placement(owners=("d1", "d2", "d3"))] * 8)
    c.servers["d1"].receive("d4", Coordinate(5, DataCall("nosuch", b"k", "get"), 1))
    (dst, answer), = c.servers["d1"].poll().send
    assert dst == "d4" and answer.id == 5 and answer.reply.kind == "unknown_bucket"


def test_a_partition_taken_away_without_a_handoff_keeps_its_records_and_streams_them_to_the_new_owner():
    """All owners' leases ran out at once: the map gives the partition to a node that holds nothing."""
    nodes = ("d1", "d2", "d3", "d4")
    c = Cluster(nodes, placements=[Placement(owners=("d1", "d2", "d3"))] * 2)
    for i in range(50):
        c.call("d1", f"k{i}".encode(), "put", b"v")
    moved = PartitionMap(epoch=2, replicas=1, placements=[Placement(owners=("d4",))] * 2)
    c.follow(moved)
    assert len(c.held("d1")) == 50  # not dropped: there was no handoff
    for _ in range(20):
        c.advance(0.25)
    assert c.held("d4") == c.held("d1")
    for i in range(50):
        assert c.value(c.call("d4", f"k{i}".encode(), "get", r=1, n=1)) == b"v"


def test_a_quorum_read_asks_only_the_replicas_it_needs_and_the_others_when_one_is_slow():
    c = Cluster()
    c.call("d1", b"k", "put", b"v")
    asked = []
    original = c.servers["d1"].poll

    def counting():
        out = original()
        asked.extend(dst for dst, m in out.send if type(m).__name__ == "ReplicaRead")
        return out

    c.servers["d1"].poll = counting
    assert c.value(c.call("d1", b"k", "get", r=2)) == b"v"
    assert len(asked) == 1  # itself and one other make r=2
    c.crash("d2")
    hedged = 0
    for _ in range(10):
        reply = c.call("d1", b"k", "get", r=2)
        if reply is None:  # it asked d2 first, which is down: the hedge asks d3
            c.advance(0.1)
            reply = c.replies.popitem()[1]
            hedged += 1
        assert c.value(reply) == b"v"
    assert hedged > 0

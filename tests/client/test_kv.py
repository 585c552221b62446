"""Keys through the async client against a real three-node core."""

from __future__ import annotations

import pytest
import trio

import keel
from keel import plugins
from keel.address import Address
from keel.client import absent, compare_value, compare_version, delete_op, get_op, put_op
from keel.contract import Kind
from keel.core.api import Call, Put, Range
from keel.errors import Compacted, KeelError, NotLeader, Unavailable
from keel.transport import ClientSettings
from tests.client.cluster import RunningCluster

CALL_TIMEOUT_S = 30.0  # seconds any one step may take on a loaded machine


async def test_put_get_range_and_delete_round_trip(cluster: RunningCluster) -> None:
    async with keel.connect(cluster.endpoints()) as c:
        first = await c.put("kv/a", "1")
        await c.put(b"kv/b", b"\xff\x00")
        again = await c.put("kv/a", "2", prev_kv=True)
        assert again.revision > first.revision
        assert again.prev is not None and again.prev.value == b"1"
        kv = await c.get("kv/a")
        assert (kv.value, kv.version, kv.mod_revision) == (b"2", 2, again.revision)
        assert await c.get("kv/missing") is None
        listed = await c.range("kv/")
        assert [(k.key, k.value) for k in listed.kvs] == [(b"kv/a", b"2"), (b"kv/b", b"\xff\x00")]
        cut = await c.range("kv/", limit=1, keys_only=True)
        assert (cut.count, cut.more, cut.kvs[0].value) == (2, True, b"")
        gone = await c.delete("kv/", prefix=True)
        assert gone.deleted == 2
        assert (await c.range("kv/")).kvs == ()


async def test_cas_swaps_only_when_the_value_matches(cluster: RunningCluster) -> None:
    async with keel.connect(cluster.endpoints()) as c:
        assert await c.cas("cas/k", None, "one")  # absent: created
        assert not await c.cas("cas/k", None, "two")  # exists now
        assert not await c.cas("cas/k", "zero", "two")
        assert await c.cas("cas/k", "one", "two")
        assert (await c.get("cas/k")).value == b"two"


async def test_txn_runs_success_or_failure_at_one_revision(cluster: RunningCluster) -> None:
    async with keel.connect(cluster.endpoints()) as c:
        await c.put("txn/config", "v1")
        won = await c.txn(compare=[compare_value("txn/config", "==", "v1"), absent("txn/owner")],
                          success=[put_op("txn/config", "v2"), put_op("txn/owner", "me"), get_op("txn/config")],
                          failure=[get_op("txn/owner")])
        assert won.succeeded
        assert [r.revision for r in won.replies[:2]] == [won.revision, won.revision]
        assert won.replies[2].kvs[0].value == b"v2"  # a read inside sees the writes before it
        lost = await c.txn(compare=[compare_version("txn/owner", "==", 0)], success=[delete_op("txn/config")],
                           failure=[get_op("txn/owner")])
        assert not lost.succeeded
        assert lost.replies[0].kvs[0].value == b"me"
        assert (await c.get("txn/config")).value == b"v2"


async def test_a_follower_endpoint_redirects_to_the_leader(cluster: RunningCluster) -> None:
    leader = cluster.wait_for_leader()
    followers = [n["client_address"] for n in cluster.nodes() if n["id"] != leader["id"]]
    # Plain addresses, a follower first: the client learns the ids and follows the hint.
    async with keel.connect([*followers, leader["client_address"]]) as c:
        with trio.fail_after(CALL_TIMEOUT_S):
            await c.put("redirect/k", "v")
            assert (await c.get("redirect/k")).value == b"v"
        assert str(c.caller.routing.leader) in cluster.addresses()


async def test_a_serializable_read_is_answered_by_a_follower_alone(cluster: RunningCluster) -> None:
    leader = cluster.wait_for_leader()
    async with keel.connect(cluster.endpoints()) as c:
        written = await c.put("stale/k", "v")
    follower = next(e for e in cluster.endpoints() if e.node_id != leader["id"])
    async with keel.connect([follower.address]) as c:
        with trio.fail_after(CALL_TIMEOUT_S):
            while (kv := await c.get("stale/k", serializable=True)) is None:
                await trio.sleep(0.05)  # the follower may not have applied it yet
        assert kv.mod_revision == written.revision


async def _send_to_the_leader(cluster: RunningCluster, message: object) -> object:
    """Send `message` through the raw transport to each node in turn until one is not `NotLeader`."""
    transport = plugins.load().get(Kind.TRANSPORT, "tcp", field="transport")
    with trio.fail_after(CALL_TIMEOUT_S):
        while True:
            for address in cluster.addresses():
                conn = await transport.connect(Address.parse(address), ClientSettings())
                try:
                    return await conn.request(message, timeout=CALL_TIMEOUT_S)
                except NotLeader:
                    pass
                finally:
                    await conn.aclose()
            await trio.sleep(0.1)  # an election is on


async def test_the_same_call_sent_twice_is_applied_once(cluster: RunningCluster) -> None:
    call = Call("raw-retry-client", 1, 0, Put(b"once/k", b"v"))
    first = await _send_to_the_leader(cluster, call)
    second = await _send_to_the_leader(cluster, call)  # a retry: same client, same seq, on a new connection
    assert second == first  # the session table answered it with the first answer
    read = await _send_to_the_leader(cluster, Call("raw-retry-client", 0, 1, Range(b"once/k")))
    assert (read.kvs[0].version, read.kvs[0].mod_revision) == (1, first.revision)


async def test_compaction_fails_watches_from_before_it(cluster: RunningCluster) -> None:
    async with keel.connect(cluster.endpoints()) as c:
        first = await c.put("compact/k", "1")
        last = await c.put("compact/k", "2")
        await c.compact(last.revision)
        with pytest.raises(Compacted):
            await c.watch("compact/k", start_revision=first.revision).__anext__()
        with pytest.raises(KeelError, match="already compacted"):
            await c.compact(first.revision)


async def test_unreachable_endpoints_raise_unavailable_by_the_deadline() -> None:
    with trio.fail_after(CALL_TIMEOUT_S):
        async with keel.connect(["127.0.0.1:1"], deadline=1.0, request_timeout=0.5) as c:
            with pytest.raises(Unavailable, match="no answer from the core within 1 s"):
                await c.get("k")

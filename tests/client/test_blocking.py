"""The blocking client: the same calls without async, served by one background loop that keeps leases alive."""

from __future__ import annotations

import time

import pytest

import keel
from keel.client import absent, put_op
from keel.errors import Unavailable
from tests.client.cluster import RunningCluster


def test_blocking_calls_read_and_write_keys(cluster: RunningCluster) -> None:
    with keel.Client(cluster.addresses()) as c:
        c.put("blocking/a", "1")
        assert c.get("blocking/a").value == b"1"
        assert c.cas("blocking/a", "1", "2")
        assert not c.cas("blocking/a", "1", "3")
        assert c.txn(compare=[absent("blocking/b")], success=[put_op("blocking/b", "x")]).succeeded
        assert [kv.key for kv in c.range("blocking/").kvs] == [b"blocking/a", b"blocking/b"]
        assert c.delete("blocking/", prefix=True).deleted == 2
        assert c.get("blocking/a") is None


def test_one_session_spans_the_calls(cluster: RunningCluster) -> None:
    with keel.Client(cluster.endpoints()) as c:
        client_id = c.client_id
        for i in range(3):
            c.put("blocking/session", str(i))
        assert c.client_id == client_id
        assert c._handle.client.caller.session.acked == 3  # every call's seq came from the one counter, answered


def test_a_blocking_watch_yields_every_event_in_order(cluster: RunningCluster) -> None:
    with keel.Client(cluster.endpoints()) as c:
        start = c.put("blocking/w", "1").revision
        c.put("blocking/w", "2")
        c.delete("blocking/w")
        events = c.watch("blocking/w", start_revision=start)
        seen = [next(events) for _ in range(3)]
    assert [(e.kind, e.kv.value) for e in seen] == [("put", b"1"), ("put", b"2"), ("delete", b"")]


def test_a_lease_left_alone_past_its_ttl_still_holds_its_keys(cluster: RunningCluster) -> None:
    with keel.Client(cluster.endpoints()) as c:
        lease = c.grant_lease(2.0)
        c.put("blocking/leased", "v", lease=lease)
        time.sleep(6.0)  # three ttls without a call: the client's loop keeps the lease alive meanwhile
        assert not lease.lost
        assert c.get("blocking/leased").lease == lease.id
        c.revoke_lease(lease)
        assert c.get("blocking/leased") is None


def test_a_lock_held_through_an_idle_minute_is_still_held(cluster: RunningCluster) -> None:
    with keel.Client(cluster.endpoints()) as holder, keel.Client(cluster.endpoints()) as other:
        with holder.lock("blocking-idle-lock", ttl=2.0) as token:
            time.sleep(60.0)  # thirty ttls without a call
            with pytest.raises(Unavailable, match="not done within"):
                with other.lock("blocking-idle-lock", timeout=1.0):
                    pass
        with other.lock("blocking-idle-lock") as later:
            pass
    assert later > token


def test_blocking_locks_hand_out_growing_tokens_and_give_up_when_told(cluster: RunningCluster) -> None:
    with keel.Client(cluster.endpoints()) as a, keel.Client(cluster.endpoints()) as b:
        with a.lock("blocking-lock") as first:
            with pytest.raises(Unavailable, match="not done within"):
                with b.lock("blocking-lock", timeout=1.0):
                    pass
        with b.lock("blocking-lock") as second:
            pass
    assert second > first


def test_a_blocking_election_elects_and_resigns(cluster: RunningCluster) -> None:
    with keel.Client(cluster.endpoints()) as c:
        election = c.election("blocking-election")
        assert election.leader() is None
        election.campaign("me")
        assert election.leader().value == b"me"
        election.resign()
        assert election.leader() is None

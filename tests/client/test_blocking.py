"""The blocking facade: the same calls without async, one `trio.run` each, one session across them."""

from __future__ import annotations

import time

import pytest

import keel
from keel.client import absent, put_op
from keel.errors import LeaseExpired, Unavailable
from tests.client.cluster import RunningCluster

EXPIRY_TIMEOUT_S = 60.0  # seconds for a lease nobody refreshes to end, on a loaded machine


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
    c = keel.Client(cluster.endpoints())
    client_id = c.client_id
    for i in range(3):
        c.put("blocking/session", str(i))
    assert c.client_id == client_id
    assert c._session.acked == 3  # every call's seq came from the one counter, and was answered


def test_a_blocking_watch_yields_every_event_in_order(cluster: RunningCluster) -> None:
    c = keel.Client(cluster.endpoints())
    start = c.put("blocking/w", "1").revision
    c.put("blocking/w", "2")
    c.delete("blocking/w")
    events = c.watch("blocking/w", start_revision=start)
    seen = [next(events) for _ in range(3)]
    assert [(e.kind, e.kv.value) for e in seen] == [("put", b"1"), ("put", b"2"), ("delete", b"")]


def test_a_blocking_lease_lives_while_the_client_is_called_and_dies_when_not(cluster: RunningCluster) -> None:
    c = keel.Client(cluster.endpoints())
    with c.lease(3.0) as lease:
        c.put("blocking/leased", "v", lease=lease)
        for _ in range(4):  # 4.5 s in all: past the ttl, refreshed on demand
            time.sleep(1.1)
            c.keepalive()
        assert c.get("blocking/leased").lease == lease.id
    assert c.get("blocking/leased") is None
    with pytest.raises(LeaseExpired):  # left alone past its ttl, the lease is gone, and leaving says so
        with c.lease(1.0) as idle:
            c.put("blocking/idle", "v", lease=idle)
            deadline = time.monotonic() + EXPIRY_TIMEOUT_S
            while not idle.lost and time.monotonic() < deadline:
                time.sleep(1.5)
                try:
                    idle.keepalive()
                except LeaseExpired:
                    pass
    deadline = time.monotonic() + EXPIRY_TIMEOUT_S
    while c.get("blocking/idle") is not None and time.monotonic() < deadline:
        time.sleep(0.2)  # the leader expires it on its own clock
    assert c.get("blocking/idle") is None


def test_blocking_locks_hand_out_growing_tokens_and_give_up_when_told(cluster: RunningCluster) -> None:
    a, b = keel.Client(cluster.endpoints()), keel.Client(cluster.endpoints())
    with a.lock("blocking-lock") as first:
        with pytest.raises(Unavailable, match="not done within"):
            with b.lock("blocking-lock", timeout=1.0):
                pass
    with b.lock("blocking-lock") as second:
        pass
    assert second > first


def test_a_blocking_election_elects_and_resigns(cluster: RunningCluster) -> None:
    c = keel.Client(cluster.endpoints())
    election = c.election("blocking-election")
    assert election.leader() is None
    election.campaign("me")
    assert election.leader().value == b"me"
    election.resign()
    assert election.leader() is None

"""Which connection carries a peer link, and what happens when it changes.

The first tests drive `PeerLink.claim` directly (no sockets): they pin the
rules that keep one connection per peer pair. The rest run real nodes.
"""

from __future__ import annotations

import pytest

from keel.address import Address
from keel.conformance.transport import Probe

from keel_transport_tcp.link import Connection, PeerLink
from keel_transport_tcp.options import TcpOptions

PEER_ADDRESS = Address("127.0.0.1", 7000)


def make_link(node_id: str, peer: str) -> PeerLink:
    return PeerLink(node_id, peer, PEER_ADDRESS, buffer=8, options=TcpOptions(), deliver=deliver_nowhere)


async def deliver_nowhere(delivery) -> bool:
    return True


def connection(dialer: str, incarnation: int = 1) -> Connection:
    return Connection(stream=None, dialer=dialer, incarnation=incarnation, advertise=None)  # claim never reads it


async def test_lower_id_keeps_its_own_connection_over_the_peers():
    link = make_link("a", "b")
    mine = connection("a")
    assert link.claim(mine)
    assert not link.claim(connection("b"))
    assert link.active is mine and not mine.scope.cancel_called


async def test_higher_id_switches_to_the_connection_the_lower_dialed():
    link = make_link("b", "a")
    mine = connection("b")
    assert link.claim(mine)
    theirs = connection("a")
    assert link.claim(theirs)
    assert link.active is theirs and mine.scope.cancel_called


async def test_lower_id_refuses_the_peers_dial_while_its_own_is_in_flight():
    link = make_link("a", "b")
    link.dialing = True
    assert not link.claim(connection("b"))
    assert link.active is None


async def test_higher_id_accepts_the_lower_dial_while_its_own_is_in_flight():
    link = make_link("b", "a")
    link.dialing = True
    assert link.claim(connection("a"))


async def test_a_newer_connection_from_the_same_dialer_replaces_the_old_one():
    link = make_link("a", "b")
    old, new = connection("b"), connection("b")
    assert link.claim(old) and link.claim(new)
    assert link.active is new and old.scope.cancel_called


async def test_a_restarted_peer_replaces_the_stale_connection_whoever_dialed_it():
    link = make_link("a", "b")
    stale = connection("a", incarnation=1)
    assert link.claim(stale)
    assert link.claim(connection("b", incarnation=2))
    assert stale.scope.cancel_called


async def test_a_closed_link_claims_nothing():
    link = make_link("a", "b")
    link.close()
    assert not link.claim(connection("a"))


async def test_send_buffer_is_bounded_and_counts_what_it_drops():
    link = make_link("a", "b")
    accepted = [link.offer(b"frame") for _ in range(20)]
    assert accepted == [True] * 8 + [False] * 12
    status = link.status()
    assert (status.sent, status.dropped, status.connected) == (8, 12, False)


# --- real nodes -------------------------------------------------------------

MESSAGES = 50  # each way, sent before the pair has connected
ROUNDS = 5  # fresh pairs that dial each other at once


@pytest.mark.parametrize("round_", range(ROUNDS))
async def test_both_sides_dialing_at_once_settle_on_one_connection_and_lose_nothing(cluster, round_):
    a, b = await cluster.start("a"), await cluster.start("b")
    cluster.mesh(a, b)  # both links want a connection now, so both dial
    for seq in range(MESSAGES):
        assert a.transport.send("b", Probe(seq)) and b.transport.send("a", Probe(seq))
    for src, dst in ((a, b), (b, a)):
        got = [(await cluster.receive(dst)) for _ in range(MESSAGES)]
        assert [(d.src, d.message.seq) for d in got] == [(src.id, seq) for seq in range(MESSAGES)]
    at_a, at_b = a.active("b"), b.active("a")
    assert at_a is not None and at_b is not None
    assert (at_a.stream.local, at_a.stream.remote) == (at_b.stream.remote, at_b.stream.local), "two connections"
    assert at_a.dialer == at_b.dialer


async def test_a_restarted_peer_is_redialed_and_messages_flow_again(cluster):
    a, b = await cluster.start("a"), await cluster.start("b")
    cluster.mesh(a, b)
    await cluster.exchange(a, b, 0)
    port = b.bound.peer.port
    await cluster.stop("b")
    await cluster.wait_until(lambda: not a.link("b").connected, "a to see b gone")
    # The new b knows no peers: a's redial alone must bring the link back.
    b = await cluster.start("b", peer_port=port)
    await cluster.exchange(a, b, 1)
    await cluster.exchange(b, a, 2)
    assert a.link("b").connected


async def test_a_node_that_dialed_in_unannounced_can_be_sent_to(cluster):
    a, c = await cluster.start("a"), await cluster.start("c")
    c.transport.set_peers((("a", a.bound.peer),))  # a does not know c
    await cluster.exchange(c, a, 0)
    await cluster.exchange(a, c, 1)
    row = a.link("c")
    assert row.connected and row.address == c.bound.peer  # the address c advertised


async def test_removed_peers_links_close_and_sends_to_them_fail(cluster):
    a, b = await cluster.start("a"), await cluster.start("b")
    cluster.mesh(a, b)
    await cluster.exchange(a, b, 0)
    a.transport.set_peers(())
    b.transport.set_peers(())
    await cluster.wait_until(lambda: a.link("b") is None and b.link("a") is None, "both links to close")
    assert not a.transport.send("b", Probe(1))


async def test_a_peer_that_moved_is_dialed_at_its_new_address(cluster):
    a, b = await cluster.start("a"), await cluster.start("b")
    a.transport.set_peers((("b", b.bound.peer),))
    await cluster.exchange(a, b, 0)
    await cluster.stop("b")
    b = await cluster.start("b")  # another port
    a.transport.set_peers((("b", b.bound.peer),))
    await cluster.exchange(a, b, 1)
    assert a.link("b").address == b.bound.peer


async def test_links_report_traffic_per_peer(cluster):
    a, b = await cluster.start("a"), await cluster.start("b")
    cluster.mesh(a, b)
    await cluster.exchange(a, b, 0)
    await cluster.wait_until(lambda: b.link("a").received >= 1, "b to count what it received")
    assert a.link("b").sent >= 1 and a.link("b").connected

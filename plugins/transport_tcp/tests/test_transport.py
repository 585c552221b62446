"""A node keeps serving its other peers whatever one connection does."""

from __future__ import annotations

import logging

import cbor2
import pytest
import trio

from keel.conformance.transport import Probe
from keel.wire import HEADER, PROTOCOL_VERSION, FrameDecoder, encode_frame

from keel_transport_tcp.messages import Hello

DEADLINE_S = 30.0
SMALL_FRAME = 64 * 1024  # bytes; a node's max_frame in the oversized-frame tests


async def expect_disconnected(stream: trio.SocketStream) -> None:
    """Read until the node closes the connection (or resets it)."""
    with trio.fail_after(DEADLINE_S):
        try:
            while await stream.receive_some(65536):
                pass
        except trio.BrokenResourceError:
            pass


async def introduce(node, name: str) -> trio.SocketStream:
    """Dial `node`'s peer port as a node called `name` and finish the handshake."""
    stream = await trio.open_tcp_stream(node.bound.peer.host, node.bound.peer.port)
    await stream.send_all(encode_frame(Hello(node_id=name, advertise="127.0.0.1:1", incarnation=7)))
    decoder = FrameDecoder()
    with trio.fail_after(DEADLINE_S):
        while not (replies := decoder.feed(await stream.receive_some(65536))):
            pass
    assert isinstance(replies[0], Hello) and replies[0].accepted
    return stream


async def three_talking_nodes(cluster, **settings):
    a = await cluster.start("a", **settings)
    b, c = await cluster.start("b"), await cluster.start("c")
    cluster.mesh(a, b, c)
    for seq, (src, dst) in enumerate(((b, a), (c, a), (a, b), (a, c))):
        await cluster.exchange(src, dst, seq)
    return a, b, c


async def still_talking(cluster, a, b, c, before) -> None:
    for seq, (src, dst) in enumerate(((b, a), (c, a), (a, b), (a, c)), start=100):
        await cluster.exchange(src, dst, seq)
    assert (a.active("b"), a.active("c")) == before, "the good peers' connections must be untouched"


def warnings_about(caplog, *words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "keel.transport.tcp" and r.levelno == logging.WARNING
            and all(w in r.getMessage() for w in words)]


GARBAGE = {
    "text": b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",  # its "length" is far above max_frame
    "wrong version": HEADER.pack(5, PROTOCOL_VERSION + 1) + b"abcd",
    "not cbor": HEADER.pack(3, PROTOCOL_VERSION) + b"\xff\xff",
    "not a hello": encode_frame(Probe(1)),
}


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE.keys())
async def test_garbage_on_the_peer_port_drops_only_that_connection(cluster, caplog, garbage):
    a, b, c = await three_talking_nodes(cluster)
    before = (a.active("b"), a.active("c"))
    raw = await trio.open_tcp_stream(a.bound.peer.host, a.bound.peer.port)
    async with raw:
        local = f"127.0.0.1:{raw.socket.getsockname()[1]}"
        await raw.send_all(garbage)
        await expect_disconnected(raw)
    assert warnings_about(caplog, local), "the refused connection must be logged with its address and reason"
    await still_talking(cluster, a, b, c, before)


async def test_an_oversized_frame_from_a_peer_drops_its_link_only(cluster, caplog):
    a, b, c = await three_talking_nodes(cluster, max_frame=SMALL_FRAME)
    before = (a.active("b"), a.active("c"))
    async with await introduce(a, "z") as raw:
        await raw.send_all(HEADER.pack(SMALL_FRAME + 1, PROTOCOL_VERSION))  # no body: the length alone is enough
        await expect_disconnected(raw)
    assert warnings_about(caplog, "z", f"exceeds max_frame {SMALL_FRAME}")
    await still_talking(cluster, a, b, c, before)


async def test_an_unknown_message_type_from_a_peer_drops_its_link_only(cluster, caplog):
    a, b, c = await three_talking_nodes(cluster)
    before = (a.active("b"), a.active("c"))
    payload = cbor2.dumps(["nobody.knows", {}])
    async with await introduce(a, "z") as raw:
        await raw.send_all(HEADER.pack(len(payload) + 1, PROTOCOL_VERSION) + payload)
        await expect_disconnected(raw)
    assert warnings_about(caplog, "z", "unknown message type")
    await still_talking(cluster, a, b, c, before)


async def test_sending_to_a_dead_peer_never_blocks_and_counts_what_it_drops(cluster):
    a = await cluster.start("a", send_buffer=16)
    b = await cluster.start("b")
    dead = (await cluster.stop((await cluster.start("dead")).id)).bound.peer
    a.transport.set_peers((("b", b.bound.peer), ("dead", dead)))
    accepted = [a.transport.send("dead", Probe(seq)) for seq in range(1000)]
    assert accepted.count(True) == 16
    row = a.link("dead")
    assert (row.sent, row.dropped, row.connected) == (16, 984, False)
    await cluster.exchange(a, b, 0)


async def test_a_peer_that_stops_reading_fills_only_its_own_buffer(cluster):
    a = await cluster.start("a", send_buffer=16)
    b = await cluster.start("b")
    cluster.mesh(a, b)
    await cluster.exchange(a, b, 0)
    async with await introduce(a, "stuck"):  # handshakes, then never reads
        await cluster.wait_until(lambda: a.link("stuck") is not None and a.link("stuck").connected,
                                 "a to take stuck's link")
        big = Probe(0, "x" * 60_000)
        with trio.fail_after(DEADLINE_S):
            while a.transport.send("stuck", big):  # until the kernel's buffers and then ours are full
                await trio.sleep(0)
        assert a.link("stuck").dropped >= 1
        await cluster.exchange(a, b, 1)
        await cluster.exchange(b, a, 2)

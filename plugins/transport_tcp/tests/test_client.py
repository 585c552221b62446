"""Clients: requests multiplexed on one connection, and failures as `Unavailable`."""

from __future__ import annotations

import pytest
import trio

from keel.address import Address
from keel.conformance.transport import Probe
from keel.errors import Unavailable
from keel.transport import ClientSettings

from keel_transport_tcp import TcpOptions, connect

DEADLINE_S = 30.0
TIMEOUT_S = 0.5  # a request's own timeout where the test expects it to expire
CONCURRENT = 50  # requests in flight on one connection at once


async def test_a_request_to_a_stopped_nodes_address_is_unavailable(cluster):
    address = (await cluster.stop((await cluster.start("gone")).id)).bound.client
    with trio.fail_after(DEADLINE_S), pytest.raises(Unavailable, match="cannot connect"):
        client = await connect(address, ClientSettings())
        async with client:
            await client.request(Probe(1), timeout=TIMEOUT_S)


async def test_a_request_to_a_listener_that_never_answers_is_unavailable_after_its_timeout():
    async def accept_and_hold(listener, task_status=trio.TASK_STATUS_IGNORED):
        held = []
        async with listener:
            task_status.started()
            while True:
                held.append(await listener.accept())

    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    address = Address("127.0.0.1", listener.socket.getsockname()[1])
    async with trio.open_nursery() as nursery:
        await nursery.start(accept_and_hold, listener)
        with trio.fail_after(DEADLINE_S):
            async with await connect(address, ClientSettings()) as client:
                with pytest.raises(Unavailable, match="no reply within"):
                    await client.request(Probe(1), timeout=TIMEOUT_S)
        nursery.cancel_scope.cancel()


async def test_replies_reach_their_own_requests_whatever_order_they_come_in(cluster):
    async def slower_for_smaller_seq(request):
        await trio.sleep((CONCURRENT - request.seq) * 0.002)
        return Probe(request.seq, "reply")

    node = await cluster.start("n", handler=slower_for_smaller_seq)
    replies = {}

    async def ask(client, seq):
        replies[seq] = await client.request(Probe(seq), timeout=DEADLINE_S)

    with trio.fail_after(DEADLINE_S):
        async with await connect(node.bound.client, ClientSettings()) as client:
            async with trio.open_nursery() as nursery:
                for seq in range(CONCURRENT):
                    nursery.start_soon(ask, client, seq)
    assert replies == {seq: Probe(seq, "reply") for seq in range(CONCURRENT)}


async def test_pending_requests_fail_as_unavailable_when_the_node_stops(cluster):
    started = trio.Event()

    async def never_answers(request):
        started.set()
        await trio.sleep_forever()

    async def stop_once_asked():
        await started.wait()
        await cluster.stop("n")

    node = await cluster.start("n", handler=never_answers)
    with trio.fail_after(DEADLINE_S):
        async with await connect(node.bound.client, ClientSettings()) as client:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(stop_once_asked)
                # Far longer than the test's deadline: only the node's stopping can end it in time.
                with pytest.raises(Unavailable, match="closed by the node|connection failed"):
                    await client.request(Probe(1), timeout=DEADLINE_S * 2)


async def test_a_closed_client_fails_new_requests_and_closes_again_quietly(cluster):
    node = await cluster.start("n")
    with trio.fail_after(DEADLINE_S):
        client = await connect(node.bound.client, ClientSettings())
        assert await client.request(Probe(1), timeout=DEADLINE_S) == Probe(1)
        await client.aclose()
        await client.aclose()
        with pytest.raises(Unavailable, match="closed by the client"):
            await client.request(Probe(2), timeout=DEADLINE_S)


async def test_garbage_from_one_client_does_not_disturb_another(cluster):
    node = await cluster.start("n")
    with trio.fail_after(DEADLINE_S):
        async with await connect(node.bound.client, ClientSettings(options=TcpOptions())) as good:
            raw = await trio.open_tcp_stream(node.bound.client.host, node.bound.client.port)
            async with raw:
                await raw.send_all(b"\x00\x00\x00\x03\x01\xff\xff")
                try:
                    while await raw.receive_some(1024):
                        pass
                except trio.BrokenResourceError:
                    pass
            assert await good.request(Probe(3), timeout=DEADLINE_S) == Probe(3)

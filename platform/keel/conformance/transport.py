"""What every transport must do, checked through its public interface.

A transport author calls `check_transport(make_pair)` from their own test
suite. `make_pair(handler)` is an async context manager that serves two
endpoints of the transport, peers of each other, both answering client
requests with `handler`, and yields a `TransportPair`; leaving it stops
them. For most transports `serving_pair` builds one from the plugin record:

    async def test_my_transport_conforms():
        await check_transport(functools.partial(serving_pair, my_plugin))

The checks: `send` to an unknown peer returns False; peer messages arrive
once each, in sending order, both ways, tagged with their sender, and
`links()` counts them on both ends; a request
gets its reply, several requests on one connection are answered
independently; a handler's `NotLeader` reaches the client with its leader
hint and `Unavailable` with its type, while any other handler exception
reaches it only as a `KeelError`; a request to an address nobody serves
fails with `Unavailable`. A failed check raises `AssertionError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import attrs
import trio

from keel.address import Address
from keel.contract import TransportPlugin
from keel.errors import KeelError, NotLeader, Unavailable
from keel.transport import (
    ClientSettings,
    RequestHandler,
    TlsSettings,
    Transport,
    TransportClient,
    TransportSettings,
)
from keel.wire import message

__all__ = ["Probe", "TransportPair", "check_transport", "serving_pair"]

DEADLINE_S = 30.0  # seconds for any one check; generous, so a loaded machine does not fail it
REQUEST_TIMEOUT_S = 10.0  # seconds a request of the checks may wait for its reply
MESSAGES = 200  # peer messages sent each way; well below the default per-peer buffer
LEADER_HINT = "node-7"


@message("keel.conformance.probe")
@attrs.frozen
class Probe:
    """The message the checks send; `action` tells the handler what to do."""

    seq: int
    action: str = "echo"


@attrs.frozen(kw_only=True)
class TransportPair:
    """Two serving endpoints that are peers of each other."""

    a: Transport
    a_id: str
    b: Transport
    b_id: str
    client_address: Address  # b's client address
    unserved_address: Address  # a client address nothing serves any more
    connect: Callable[[Address], Awaitable[TransportClient]]


MakePair = Callable[[RequestHandler], AbstractAsyncContextManager[TransportPair]]


async def check_transport(make_pair: MakePair) -> None:
    """Run every transport check on a pair from `make_pair`.

    Raises:
        AssertionError: the transport broke a rule; the message says which.
    """
    responder = _Responder()
    failure: AssertionError | None = None
    async with make_pair(responder.handle) as pair:
        try:
            await _within("send to an unknown peer", _check_unknown_peer(pair))
            await _within("ordered delivery a -> b", _check_ordered_delivery(pair.a, pair.a_id, pair.b, pair.b_id))
            await _within("ordered delivery b -> a", _check_ordered_delivery(pair.b, pair.b_id, pair.a, pair.a_id))
            await _within("request/response", _check_requests(pair, responder))
            await _within("unserved address", _check_unserved(pair))
        except AssertionError as exc:
            # Raised outside `make_pair`, whose nursery would wrap it in an ExceptionGroup.
            failure = exc
    if failure is not None:
        raise failure


@asynccontextmanager
async def serving_pair(
    plugin: TransportPlugin,
    handler: RequestHandler,
    *,
    host: str = "127.0.0.1",
    options: Any = None,
    tls: TlsSettings | None = None,
) -> AsyncIterator[TransportPair]:
    """Serve endpoints `a` and `b` of `plugin` on `host`, port 0, as peers.

    Both bind first, then learn each other's real peer address through
    `set_peers`. A third endpoint is served and stopped to find an address
    nobody serves. `options` and `tls` go to every endpoint and client.
    """
    def settings(node_id: str) -> TransportSettings:
        anywhere = Address(host=host, port=0)
        return TransportSettings(node_id=node_id, listen_peer=anywhere, listen_client=anywhere,
                                 advertise_peer=anywhere, tls=tls, options=options)

    async def connect(address: Address) -> TransportClient:
        return await plugin.connect(address, ClientSettings(tls=tls, options=options))

    async with trio.open_nursery() as nursery:
        with trio.fail_after(DEADLINE_S):
            gone, scope, stopped = plugin.create(settings("gone")), trio.CancelScope(), trio.Event()
            unserved = (await nursery.start(_serve_in, scope, stopped, gone, handler)).client
            scope.cancel()
            await stopped.wait()
            a, b = plugin.create(settings("a")), plugin.create(settings("b"))
            bound_a = await nursery.start(a.serve, handler)
            bound_b = await nursery.start(b.serve, handler)
        a.set_peers((("b", bound_b.peer),))
        b.set_peers((("a", bound_a.peer),))
        yield TransportPair(a=a, a_id="a", b=b, b_id="b", client_address=bound_b.client,
                            unserved_address=unserved, connect=connect)
        nursery.cancel_scope.cancel()


async def _serve_in(scope: trio.CancelScope, stopped: trio.Event, transport: Transport, handler: RequestHandler,
                    *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    try:
        with scope:
            await transport.serve(handler, task_status=task_status)
    finally:
        stopped.set()


class _Responder:
    """The request handler of the checks."""

    def __init__(self) -> None:
        self.released = trio.Event()

    async def handle(self, request: Any) -> Any:
        if not isinstance(request, Probe):
            raise TypeError(f"the checks send Probe, the transport delivered {type(request).__name__}")
        if request.action == "not_leader":
            raise NotLeader(LEADER_HINT)
        if request.action == "unavailable":
            raise Unavailable("quorum lost (raised by the conformance handler)")
        if request.action == "bug":
            raise RuntimeError("raised by the conformance handler on purpose")
        if request.action == "wait":
            with trio.fail_after(REQUEST_TIMEOUT_S):
                await self.released.wait()
        if request.action == "release":
            self.released.set()
        return Probe(request.seq, "reply")


async def _within(name: str, check: Awaitable[None]) -> None:
    try:
        with trio.fail_after(DEADLINE_S):
            await check
    except trio.TooSlowError:
        raise AssertionError(f"transport check {name!r}: not done within {DEADLINE_S:g} s") from None


async def _check_unknown_peer(pair: TransportPair) -> None:
    await trio.lowlevel.checkpoint()
    assert pair.a.send("no-such-node", Probe(0)) is False, "send to an unknown peer must return False"


async def _check_ordered_delivery(src: Transport, src_id: str, dst: Transport, dst_id: str) -> None:
    for seq in range(MESSAGES):
        assert src.send(dst_id, Probe(seq, "order")), f"{src_id}: send {seq} to peer {dst_id} was refused"
    seen = []
    while len(seen) < MESSAGES:
        delivery = await dst.receive()
        assert delivery.src == src_id, f"{dst_id} got a message from {delivery.src!r}; only {src_id} sent any"
        assert isinstance(delivery.message, Probe), f"{dst_id} got {delivery.message!r}, not what was sent"
        seen.append(delivery.message.seq)
    assert seen == list(range(MESSAGES)), f"{src_id} -> {dst_id}: sent 0..{MESSAGES - 1} in order, got {seen}"
    sent = {row.peer: row.sent for row in src.links()}.get(dst_id, 0)
    received = {row.peer: row.received for row in dst.links()}.get(src_id, 0)
    assert sent >= MESSAGES and received >= MESSAGES, (
        f"links() must count the traffic: {src_id} reports {sent} sent to {dst_id}, {dst_id} {received} received"
    )


async def _check_requests(pair: TransportPair, responder: _Responder) -> None:
    client = await pair.connect(pair.client_address)
    async with client:
        reply = await client.request(Probe(1), timeout=REQUEST_TIMEOUT_S)
        assert reply == Probe(1, "reply"), f"request/response: expected the echo of Probe(1), got {reply!r}"

        not_leader = await _expect(NotLeader, client.request(Probe(2, "not_leader"), timeout=REQUEST_TIMEOUT_S),
                                   "a handler's NotLeader must be raised on the client with its type")
        assert not_leader.leader_hint == LEADER_HINT, f"NotLeader lost its hint: {not_leader.leader_hint!r}"

        await _expect(Unavailable, client.request(Probe(3, "unavailable"), timeout=REQUEST_TIMEOUT_S),
                      "a handler's Unavailable must be raised on the client with its type")
        error = await _expect(KeelError, client.request(Probe(4, "bug"), timeout=REQUEST_TIMEOUT_S),
                              "a handler's RuntimeError must reach the client as a KeelError")
        assert "raised by the conformance handler" not in str(error), (
            f"a non-keel error's message must stay on the node, the client saw {error}"
        )

        # One request waits for the next to arrive: requests on one connection
        # must not queue behind each other.
        replies: dict[int, Any] = {}

        async def ask(seq: int, action: str) -> None:
            try:
                replies[seq] = await client.request(Probe(seq, action), timeout=REQUEST_TIMEOUT_S)
            except KeelError as exc:
                replies[seq] = exc

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, 5, "wait")
            await trio.sleep(0.05)  # most likely lets 5 reach the handler first; if not, 5 just need not wait
            nursery.start_soon(ask, 6, "release")
        assert replies == {5: Probe(5, "reply"), 6: Probe(6, "reply")}, f"multiplexed requests got {replies!r}"


async def _check_unserved(pair: TransportPair) -> None:
    async def attempt() -> None:
        client = await pair.connect(pair.unserved_address)
        async with client:
            await client.request(Probe(7), timeout=REQUEST_TIMEOUT_S)

    await _expect(Unavailable, attempt(), f"a request to {pair.unserved_address}, which nobody serves, "
                                          "must fail with Unavailable")


E = TypeVar("E", bound=BaseException)


async def _expect(kind: type[E], attempt: Awaitable[Any], rule: str) -> E:
    try:
        result = await attempt
    except kind as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - reported as the failed rule
        raise AssertionError(f"{rule}; got {type(exc).__name__}: {exc}") from exc
    raise AssertionError(f"{rule}; it returned {result!r}")

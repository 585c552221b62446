"""The transport checks catch transports that break the rules."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from keel.conformance import check_transport, serving_pair
from keel.contract import TransportPlugin
from keel.errors import KeelError
from keel.transport.interface import Delivery, LinkStatus, RequestHandler, Transport
from keel.transport.memory import MemoryOptions, MemoryTransport, connect


class Swapping(Transport):
    """A memory endpoint that swaps each pair of messages it sends to a peer."""

    def __init__(self, settings: Any) -> None:
        self._inner = MemoryTransport(settings)
        self._held: dict[str, Any] = {}

    async def serve(self, handler: RequestHandler, *, task_status: Any = None) -> None:
        await self._inner.serve(handler, task_status=task_status)

    def send(self, dst: str, message: Any) -> bool:
        if dst not in {row.peer for row in self._inner.links()}:
            return self._inner.send(dst, message)
        first = self._held.pop(dst, None)
        if first is None:
            self._held[dst] = message
            return True
        return self._inner.send(dst, message) and self._inner.send(dst, first)

    async def receive(self) -> Delivery:
        return await self._inner.receive()

    def set_peers(self, peers: Any) -> None:
        self._inner.set_peers(peers)

    def links(self) -> tuple[LinkStatus, ...]:
        return self._inner.links()


async def vague_connect(address: Any, settings: Any) -> Any:
    """A client whose errors all arrive as plain KeelError, hints lost."""
    inner = await connect(address, settings)

    class Vague:
        async def request(self, message: Any, *, timeout: float) -> Any:
            try:
                return await inner.request(message, timeout=timeout)
            except KeelError as exc:
                raise KeelError(str(exc)) from None

        async def aclose(self) -> None:
            await inner.aclose()

        async def __aenter__(self) -> Any:
            return self

        async def __aexit__(self, *exc: object) -> None:
            await self.aclose()

    return Vague()


def plugin(create: Any = MemoryTransport, connect_: Any = connect) -> TransportPlugin:
    return TransportPlugin(name="broken", version="0", create=create, connect=connect_, options=MemoryOptions)


async def test_a_transport_that_reorders_messages_fails_the_checks(autojump_clock):
    make_pair = functools.partial(serving_pair, plugin(create=Swapping), options=MemoryOptions(network="swapping"))
    with pytest.raises(AssertionError, match="in order"):
        await check_transport(make_pair)


async def test_a_client_that_loses_the_error_type_fails_the_checks(autojump_clock):
    make_pair = functools.partial(serving_pair, plugin(connect_=vague_connect), options=MemoryOptions(network="vague"))
    with pytest.raises(AssertionError, match="NotLeader"):
        await check_transport(make_pair)

"""The built-in in-process transport (plugin name `memory`).

Every endpoint in one process that names the same `network` option shares a
hub; addresses are names in that hub, not sockets. Messages go through the
wire codec both ways, so what works here is known to be sendable over TCP.
It serves in-process clusters (tests, notebooks, the transport conformance
checks); the simulator drives its sans-I/O nodes over its own virtual
network, with a virtual clock, instead.

The hub can cut links (`cut`, `heal`) so in-process tests can partition
nodes without sockets.
"""

from __future__ import annotations

from typing import Any

import attrs
import trio

from keel import hookimpl, wire
from keel.address import Address
from keel.contract import TransportPlugin
from keel.errors import Unavailable
from keel.transport.envelope import error_reply, raise_if_error
from keel.transport.interface import (
    BoundAddresses,
    ClientSettings,
    Delivery,
    LinkStatus,
    RequestHandler,
    Transport,
    TransportClient,
    TransportSettings,
)

KEEL_CONTRACT = "1.0"
VERSION = "1.0.0"
INBOX = 4096  # messages waiting for a node to take them before senders' messages drop
FIRST_PORT = 20000  # names handed out for port 0; nothing listens there


def _network_name(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{value!r} is not a network name (a non-empty string)")


@attrs.frozen(kw_only=True)
class MemoryOptions:
    """`[transport.options]` of the memory transport."""

    network: str = attrs.field(default="default", validator=_network_name)  # endpoints that share a name see each other


@attrs.define
class MemoryHub:
    """The endpoints of one in-process network, and the links cut between them."""

    peers: dict[Address, MemoryTransport] = attrs.Factory(dict)
    clients: dict[Address, MemoryTransport] = attrs.Factory(dict)
    cuts: set[tuple[str, str]] = attrs.Factory(set)  # (src, dst) node ids
    next_port: int = FIRST_PORT

    def bind(self, address: Address, table: dict[Address, MemoryTransport], owner: MemoryTransport) -> Address:
        if address.port == 0:
            self.next_port += 1
            address = attrs.evolve(address, port=self.next_port)
        if address in table:
            raise Unavailable(f"memory transport: address {address} is already in use")
        table[address] = owner
        return address

    def cut(self, src: str, dst: str, *, both_ways: bool = True) -> None:
        """Drop messages from `src` to `dst` (and back, unless one-way)."""
        self.cuts.add((src, dst))
        if both_ways:
            self.cuts.add((dst, src))

    def heal(self) -> None:
        self.cuts.clear()


HUBS: dict[str, MemoryHub] = {}


def hub(name: str = "default") -> MemoryHub:
    """The hub of network `name` in this process, made on first use."""
    return HUBS.setdefault(name, MemoryHub())


def _copy(message: Any) -> Any:
    return wire.decode(wire.encode(message))


class MemoryTransport(Transport):
    """One node's endpoint on an in-process hub."""

    def __init__(self, settings: TransportSettings) -> None:
        self.settings = settings
        self._hub = hub((settings.options or MemoryOptions()).network)
        self._peers = dict(settings.peers)
        self._inbox_in, self._inbox_out = trio.open_memory_channel[Delivery](INBOX)
        self._handler: RequestHandler | None = None
        self._counts: dict[str, list[int]] = {}  # peer -> [sent, dropped, received]

    async def serve(self, handler: RequestHandler, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        bound: list[tuple[Address, dict[Address, MemoryTransport]]] = []
        try:
            peer = self._hub.bind(self.settings.listen_peer, self._hub.peers, self)
            bound.append((peer, self._hub.peers))
            client = None
            if self.settings.listen_client is not None:
                client = self._hub.bind(self.settings.listen_client, self._hub.clients, self)
                bound.append((client, self._hub.clients))
            self._handler = handler
            task_status.started(BoundAddresses(peer=peer, client=client))
            await trio.sleep_forever()
        finally:
            self._handler = None
            for address, table in bound:
                table.pop(address, None)

    def send(self, dst: str, message: Any) -> bool:
        counts = self._counts.setdefault(dst, [0, 0, 0])
        address = self._peers.get(dst)
        target = self._hub.peers.get(address) if address is not None else None
        if target is None or self._handler is None or (self.settings.node_id, dst) in self._hub.cuts:
            counts[1] += 1
            return False
        try:
            target._inbox_in.send_nowait(Delivery(self.settings.node_id, _copy(message)))
        except (trio.WouldBlock, trio.ClosedResourceError):
            counts[1] += 1
            return False
        counts[0] += 1
        target._counts.setdefault(self.settings.node_id, [0, 0, 0])[2] += 1
        return True

    async def receive(self) -> Delivery:
        return await self._inbox_out.receive()

    def set_peers(self, peers: tuple[tuple[str, Address], ...]) -> None:
        self._peers = dict(peers)

    def links(self) -> tuple[LinkStatus, ...]:
        rows = []
        for peer in sorted(set(self._peers) | set(self._counts)):
            sent, dropped, received = self._counts.get(peer, [0, 0, 0])
            address = self._peers.get(peer)
            rows.append(LinkStatus(peer=peer, address=address, connected=address in self._hub.peers,
                                   sent=sent, dropped=dropped, received=received))
        return tuple(rows)

    async def answer(self, message: Any) -> Any:
        """Run the request handler as a client connection would."""
        handler = self._handler
        if handler is None:
            raise Unavailable(f"{self.settings.node_id}: not serving")
        try:
            return _copy(await handler(_copy(message)))
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the client as a typed reply
            return error_reply(exc)


class MemoryClient(TransportClient):
    """A client connection to an endpoint on an in-process hub."""

    def __init__(self, hub_: MemoryHub, address: Address) -> None:
        self._hub = hub_
        self._address = address
        self._closed = False

    async def request(self, message: Any, *, timeout: float) -> Any:
        target = None if self._closed else self._hub.clients.get(self._address)
        if target is None:
            raise Unavailable(f"{self._address}: no node serves this address")
        with trio.move_on_after(timeout):
            return raise_if_error(await target.answer(message))
        raise Unavailable(f"{self._address}: no reply within {timeout:g} s")

    async def aclose(self) -> None:
        self._closed = True


async def connect(address: Address, settings: ClientSettings) -> MemoryClient:
    """Connect to the endpoint whose client address is `address`."""
    await trio.lowlevel.checkpoint()
    network = (settings.options or MemoryOptions()).network
    if address not in hub(network).clients:
        raise Unavailable(f"{address}: connection refused (no memory endpoint there)")
    return MemoryClient(hub(network), address)


@hookimpl
def keel_transports() -> list[TransportPlugin]:
    return [
        TransportPlugin(
            name="memory",
            version=VERSION,
            create=MemoryTransport,
            connect=connect,
            options=MemoryOptions,
            summary="in-process hub; for tests and in-process clusters",
        )
    ]

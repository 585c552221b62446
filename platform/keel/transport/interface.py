"""What every transport provides, and the settings it is built from.

A transport carries two kinds of traffic:

- **peer messages**, one-way between nodes: addressed by node id, ordered per
  peer, delivered at most once. `send` never blocks: each peer has a bounded
  buffer, and when it is full the message is dropped and counted, so a slow
  or dead peer never holds up the others. Consensus protocols already
  tolerate loss; they must not tolerate a stalled node.
- **client requests**, request/response: a client connects to a node's
  client address and sends requests; the node answers each through the
  handler given to `serve`. A request that gets no answer by its deadline
  fails with `Unavailable`.

Bad bytes from any connection end that connection alone (`WireError`); the
node keeps serving everyone else.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from keel.address import Address
from keel.wire import MAX_FRAME

__all__ = [
    "SEND_BUFFER",
    "BoundAddresses",
    "ClientSettings",
    "Delivery",
    "LinkStatus",
    "RequestHandler",
    "TlsSettings",
    "Transport",
    "TransportClient",
    "TransportSettings",
]

SEND_BUFFER = 4096  # messages queued per peer before new ones are dropped; ~a second of heartbeats and appends

RequestHandler = Callable[[Any], Awaitable[Any]]
"""Answers one client request message with one reply message.

A `KeelError` it raises goes back to the client as an error reply and is
raised there with the same type; any other exception is a bug in the node
and is answered as an internal error.
"""


@attrs.frozen(kw_only=True)
class TlsSettings:
    """Files for TLS on every connection; all PEM."""

    cert: str  # this node's certificate chain
    key: str  # its private key
    ca: str  # the authority that signed every peer's and client's certificate


@attrs.frozen(kw_only=True)
class TransportSettings:
    """Everything a transport needs to build one node's endpoint."""

    node_id: str
    listen_peer: Address
    listen_client: Address | None  # None: this endpoint takes no clients
    advertise_peer: Address  # what peers should dial; sent in the handshake
    peers: tuple[tuple[str, Address], ...] = ()  # node id, peer address; this node excluded
    max_frame: int = MAX_FRAME
    send_buffer: int = SEND_BUFFER
    connect_timeout: float = 2.0  # seconds for one dial attempt
    tls: TlsSettings | None = None
    options: Any = None  # the plugin's own options class, built from [transport.options]


@attrs.frozen(kw_only=True)
class ClientSettings:
    """How a client connects to a node's client address."""

    connect_timeout: float = 2.0  # seconds
    max_frame: int = MAX_FRAME
    tls: TlsSettings | None = None
    options: Any = None


@attrs.frozen
class BoundAddresses:
    """Where a serving transport actually listens (port 0 resolved)."""

    peer: Address
    client: Address | None


@attrs.frozen
class Delivery:
    """A peer message as received."""

    src: str
    message: Any


@attrs.frozen(kw_only=True)
class LinkStatus:
    """One peer link as the transport sees it (for `keel status`)."""

    peer: str
    address: Address | None
    connected: bool
    sent: int  # messages handed to the link
    dropped: int  # messages dropped because the buffer was full or the link down
    received: int


class Transport(abc.ABC):
    """One node's endpoint."""

    @abc.abstractmethod
    async def serve(self, handler: RequestHandler, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, keep the peer links up, and answer clients until cancelled.

        Calls `task_status.started(BoundAddresses)` once both listeners are
        bound, so `await nursery.start(transport.serve, handler)` returns the
        real ports. Cancelling the task closes every connection.
        """

    @abc.abstractmethod
    def send(self, dst: str, message: Any) -> bool:
        """Queue a one-way message to peer `dst` without blocking.

        Returns False when it was dropped: unknown peer, or its buffer full.
        """

    @abc.abstractmethod
    async def receive(self) -> Delivery:
        """The next peer message, in arrival order (per peer: sending order)."""

    @abc.abstractmethod
    def set_peers(self, peers: tuple[tuple[str, Address], ...]) -> None:
        """Replace the set of peers (membership change); links to removed peers close."""

    @abc.abstractmethod
    def links(self) -> tuple[LinkStatus, ...]:
        """The state of every peer link, by peer id."""


class TransportClient(abc.ABC):
    """A client's connection to one node."""

    @abc.abstractmethod
    async def request(self, message: Any, *, timeout: float) -> Any:
        """Send one request and return its reply.

        Raises:
            Unavailable: no reply within `timeout` seconds, or the connection
                failed or closed.
            KeelError: the node answered with an error (`NotLeader`…).
        """

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the connection; pending requests fail with `Unavailable`. Idempotent."""

    async def __aenter__(self) -> TransportClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


Connect = Callable[[Address, ClientSettings], Awaitable[TransportClient]]

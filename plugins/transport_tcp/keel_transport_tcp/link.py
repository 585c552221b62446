"""One peer link: its send buffer, its counters, and the connection carrying it.

Theory of operation. A link exists per peer this node knows (by address,
or because the peer dialed in). Messages for the peer wait in one bounded
buffer that outlives connections; whichever connection is *active* drains
it. Only the active connection is read or written, so everything the peer
sent on an older connection was delivered before anything on the newer one:
ordering per peer survives a switch, and what was in flight on a dropped
connection is lost (at most once).

Which connection is active is decided by `claim`, synchronously, so that a
decision and the state it rests on never straddle an await:

1. a new connection from a peer that restarted (another incarnation)
   replaces the old one, which is stale;
2. between two connections dialed by the same node, the newer wins: the
   dialer only dials again once it gave up on the old one;
3. between connections dialed by each side, the one dialed by the lower
   node id wins, on both ends alike;
4. an accepting node with the lower id refuses the peer's connection while
   its own dial to that peer is in flight, since rule 3 would discard the
   peer's connection moments later and lose whatever was written on it.

The dialer writes nothing until the acceptor has said yes, so rule 4 keeps
simultaneous dials from losing messages, and the pair settles on one
connection.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial

import attrs
import trio

from keel.address import Address
from keel.errors import WireError
from keel.transport import Delivery, LinkStatus
from keel.wire import encode_frame

from keel_transport_tcp.messages import Hello, Ping
from keel_transport_tcp.options import TcpOptions
from keel_transport_tcp.stream import LINK_ERRORS, FramedStream, describe

__all__ = ["Connection", "PeerLink"]

logger = logging.getLogger("keel.transport.tcp")

WRITE_BATCH = 64  # frames joined into one write; fewer syscalls when a burst is queued
PING_FRAME = encode_frame(Ping())


@attrs.define(eq=False)
class Connection:
    """A connection past its handshake, to be claimed by a link."""

    stream: FramedStream
    dialer: str  # node id of the end that dialed it
    incarnation: int  # the peer's, from its hello
    advertise: Address | None  # where the peer says it can be dialed
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)  # cancelled when replaced
    ended: str | None = None  # why it stopped, for the log


class PeerLink:
    """Everything this node keeps about one peer."""

    def __init__(
        self,
        node_id: str,
        peer: str,
        address: Address | None,
        *,
        buffer: int,
        options: TcpOptions,
        deliver: Callable[[Delivery], Awaitable[bool]],
    ) -> None:
        self.node_id = node_id
        self.peer = peer
        self.address = address  # where to dial; None: the peer dialed in and is never dialed
        self.active: Connection | None = None
        self.dialing = False  # a dial to this peer is in flight (rule 4)
        self.dial_scope: trio.CancelScope | None = None  # the task that keeps dialing this peer
        self.closed = False
        self._options = options
        self._deliver = deliver
        self._queue_in, self._queue_out = trio.open_memory_channel[bytes](buffer)
        self._changed = trio.Event()
        self._advertised: Address | None = None
        self._sent = self._dropped = self._received = 0

    # --- used by the transport -------------------------------------------

    def offer(self, frame: bytes) -> bool:
        """Queue one encoded frame for the peer; False if the buffer is full."""
        try:
            self._queue_in.send_nowait(frame)
        except (trio.WouldBlock, trio.ClosedResourceError):
            self._dropped += 1
            return False
        self._sent += 1
        return True

    def status(self) -> LinkStatus:
        return LinkStatus(
            peer=self.peer,
            address=self.address or self._advertised,
            connected=self.active is not None,
            sent=self._sent,
            dropped=self._dropped,
            received=self._received,
        )

    def move(self, address: Address | None) -> None:
        """The peer's dial address changed, or became known."""
        old, self.address = self.address, address
        active = self.active
        if old is not None and address != old and active is not None and active.dialer == self.node_id:
            # We reached it at the old address; the node has moved on.
            active.ended = f"address changed to {address}"
            active.scope.cancel()
        self._notify()

    def close(self) -> None:
        """The peer left the membership: stop dialing and drop its connection."""
        self.closed = True
        if self.dial_scope is not None:
            self.dial_scope.cancel()
        if self.active is not None:
            self.active.ended = "peer removed"
            self.active.scope.cancel()
        self._queue_in.close()

    async def wait_until_unconnected(self) -> None:
        """Return once this link has an address to dial and no connection."""
        while self.address is None or self.active is not None:
            await self._changed.wait()

    # --- choosing the connection ----------------------------------------

    def claim(self, conn: Connection) -> bool:
        """Make `conn` the active connection if the rules prefer it (see module doc)."""
        if self.closed:
            return False
        old = self.active
        inbound = conn.dialer == self.peer
        if inbound and self.dialing and self.node_id < self.peer:
            return False
        if old is not None:
            if conn.incarnation == old.incarnation and conn.dialer != old.dialer and conn.dialer > old.dialer:
                return False
            old.ended = f"replaced by the connection dialed by {conn.dialer}"
            old.scope.cancel()
        self.active = conn
        self._advertised = conn.advertise
        self._notify()
        return True

    async def run(self, conn: Connection, *, greeting: bytes = b"") -> None:
        """Carry the link over `conn`, which `claim` accepted, until it ends.

        `greeting` is written before any queued message (the acceptor's
        hello). Never raises for the connection's failure: it is logged, the
        link goes down, and the dialing task tries again.
        """
        logger.info("%s: link to %s up (%s, dialed by %s)", self.node_id, self.peer, conn.stream.remote, conn.dialer)
        try:
            with conn.scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._guard, conn, partial(self._write, greeting=greeting), nursery.cancel_scope)
                    nursery.start_soon(self._guard, conn, self._read, nursery.cancel_scope)
        finally:
            if self.active is conn:
                self.active = None
                self._notify()
            await conn.stream.aclose()
        logger.info("%s: link to %s down (%s): %s", self.node_id, self.peer, conn.stream.remote,
                    conn.ended or "closed")

    # --- the active connection's two loops -------------------------------

    async def _guard(self, conn: Connection, loop: Callable[[Connection], Awaitable[None]],
                     scope: trio.CancelScope) -> None:
        try:
            await loop(conn)
        except WireError as exc:
            logger.warning("%s: peer %s (%s) sent a bad frame, dropping the connection: %s",
                           self.node_id, self.peer, conn.stream.remote, exc)
            conn.ended = conn.ended or f"wire error: {exc}"
        except LINK_ERRORS as exc:
            conn.ended = conn.ended or describe(exc)
        scope.cancel()

    async def _read(self, conn: Connection) -> None:
        idle = self._options.idle_timeout
        while True:
            with trio.move_on_after(idle) as waiting:
                batch = await conn.stream.receive_batch()
            if waiting.cancelled_caught:
                conn.ended = conn.ended or f"heard nothing for {idle:g} s"
                return
            if batch is None:
                conn.ended = conn.ended or "closed by the peer"
                return
            for message in batch:
                if isinstance(message, Ping):
                    continue
                if isinstance(message, Hello):
                    raise WireError("tcp.hello: sent again after the handshake")
                self._received += 1
                if not await self._deliver(Delivery(self.peer, message)):
                    self._dropped += 1  # the node took nothing for a whole idle_timeout

    async def _write(self, conn: Connection, *, greeting: bytes) -> None:
        if greeting:
            with trio.fail_after(self._options.write_timeout):
                await conn.stream.send(greeting)
        while True:
            batch: list[bytes] = []
            with trio.move_on_after(self._options.keepalive_interval):
                try:
                    batch.append(await self._queue_out.receive())
                except trio.EndOfChannel:  # the link was closed
                    return
            while batch and len(batch) < WRITE_BATCH:
                try:
                    batch.append(self._queue_out.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            with trio.fail_after(self._options.write_timeout):
                await conn.stream.send(b"".join(batch) if batch else PING_FRAME)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

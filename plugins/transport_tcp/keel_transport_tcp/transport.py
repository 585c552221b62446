"""One node's TCP endpoint: two listeners, the peer links, the client service.

`serve` binds the peer and client listeners, then owns, in one nursery,
every task of the endpoint: a dialing task per peer link (which also runs
the connections it dials), and one task per accepted connection (which
runs it). Cancelling `serve` ends them all and closes every socket.

A peer connection opens with a `tcp.hello` each way. The dialer's names
itself; the acceptor decides at once whether the link takes the connection
(`PeerLink.claim`) and answers with its own hello saying so. Only then does
either side write, so a refused connection carries nothing that is lost.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import attrs
import trio

from keel.address import Address
from keel.errors import Unavailable, WireError
from keel.transport import (
    BoundAddresses,
    Delivery,
    LinkStatus,
    RequestHandler,
    Transport,
    TransportSettings,
)
from keel.wire import encode_frame

from keel_transport_tcp.backoff import Backoff
from keel_transport_tcp.link import Connection, PeerLink
from keel_transport_tcp.messages import Hello, tag_name
from keel_transport_tcp.options import TcpOptions
from keel_transport_tcp.server import ClientService
from keel_transport_tcp.stream import CLOSE_GRACE_S, LINK_ERRORS, FramedStream, describe, open_stream, remote_of
from keel_transport_tcp.tls import TlsContexts, contexts, handshake

__all__ = ["INBOX", "TcpTransport"]

logger = logging.getLogger("keel.transport.tcp")

INBOX = 4096  # peer messages waiting for the node to take them; past that, reading from peers pauses
MAX_NODE_ID = 256  # characters in a node id a peer may claim; real ids are short names


class TcpTransport(Transport):
    """A node's endpoint over TCP (optionally TLS)."""

    def __init__(self, settings: TransportSettings, *, rng: random.Random | None = None) -> None:
        """Build the endpoint; nothing is bound until `serve`.

        Raises:
            ConfigError: the TLS files cannot be loaded.
            TypeError: `settings.options` is not a `TcpOptions`.
        """
        options = settings.options if settings.options is not None else TcpOptions()
        if not isinstance(options, TcpOptions):
            raise TypeError(f"tcp transport: options must be TcpOptions, not {type(options).__name__}")
        self.settings = settings
        self.node_id = settings.node_id
        self._options = options
        self._tls: TlsContexts | None = contexts(settings.tls) if settings.tls is not None else None
        self._rng = rng if rng is not None else random.Random()
        self._inbox_in, self._inbox_out = trio.open_memory_channel[Delivery](INBOX)
        self._links: dict[str, PeerLink] = {}
        self._serving = False
        self._nursery: trio.Nursery | None = None  # serve's, while serving: where new links' tasks go
        self._hello = Hello(node_id=self.node_id, advertise=str(settings.advertise_peer), incarnation=0)  # set by serve
        self.set_peers(settings.peers)

    # --- the Transport interface -----------------------------------------

    async def serve(self, handler: RequestHandler, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, keep the peer links up and answer clients until cancelled.

        Raises:
            Unavailable: a listener cannot be bound (address in use…).
            RuntimeError: this endpoint is already serving.
        """
        if self._serving:
            raise RuntimeError(f"tcp transport {self.node_id}: already serving")
        self._serving = True
        listeners: list[trio.SocketListener] = []
        try:
            peer_listeners = await self._listen(self.settings.listen_peer)
            listeners += peer_listeners
            client_listeners: list[trio.SocketListener] = []
            if self.settings.listen_client is not None:
                client_listeners = await self._listen(self.settings.listen_client)
                listeners += client_listeners
            bound = BoundAddresses(
                peer=_bound(peer_listeners),
                client=_bound(client_listeners) if client_listeners else None,
            )
            advertise = self.settings.advertise_peer
            if advertise.port == 0:
                advertise = attrs.evolve(advertise, port=bound.peer.port)
            self._hello = Hello(node_id=self.node_id, advertise=str(advertise), incarnation=self._rng.getrandbits(63))
            clients = ClientService(self.node_id, handler, max_frame=self.settings.max_frame, options=self._options,
                                    tls=self._tls.server if self._tls is not None else None)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.serve_listeners, self._accept_peer, peer_listeners)
                if client_listeners:
                    nursery.start_soon(trio.serve_listeners, clients.serve_connection, client_listeners)
                self._nursery = nursery
                for link in self._links.values():
                    nursery.start_soon(self._keep_dialing, link)
                logger.info("%s: listening for peers on %s, clients on %s", self.node_id, bound.peer, bound.client)
                task_status.started(bound)
        finally:
            self._nursery = None
            self._serving = False
            with trio.move_on_after(CLOSE_GRACE_S, shield=True):
                for listener in listeners:
                    await listener.aclose()

    def send(self, dst: str, message: Any) -> bool:
        """Queue `message` for peer `dst`; False if `dst` is unknown or its buffer is full.

        Messages queue while the link is down and leave once it is up.

        Raises:
            TypeError: `message` is not a registered wire message.
            ValueError: its frame exceeds `max_frame`.
        """
        link = self._links.get(dst)
        if link is None:
            return False
        return link.offer(encode_frame(message, max_frame=self.settings.max_frame))

    async def receive(self) -> Delivery:
        return await self._inbox_out.receive()

    def set_peers(self, peers: tuple[tuple[str, Address], ...]) -> None:
        """Replace the peers to dial; links to removed peers close.

        A node that dialed in without being a peer keeps its link while its
        connection lasts.
        """
        wanted = {peer: address for peer, address in peers if peer != self.node_id}
        for peer, link in list(self._links.items()):
            if peer not in wanted and link.address is not None:
                del self._links[peer]
                link.close()
        for peer, address in sorted(wanted.items()):
            link = self._links.get(peer)
            if link is None:
                self._add_link(peer, address)
            elif link.address != address:
                link.move(address)

    def links(self) -> tuple[LinkStatus, ...]:
        return tuple(link.status() for _, link in sorted(self._links.items()))

    # --- peer links ---------------------------------------------------------

    def _add_link(self, peer: str, address: Address | None) -> PeerLink:
        link = PeerLink(self.node_id, peer, address, buffer=self.settings.send_buffer, options=self._options,
                        deliver=self._deliver)
        self._links[peer] = link
        if self._nursery is not None:
            self._nursery.start_soon(self._keep_dialing, link)
        return link

    async def _deliver(self, delivery: Delivery) -> bool:
        try:
            self._inbox_in.send_nowait(delivery)  # the usual case, without a trip through the scheduler
            return True
        except trio.WouldBlock:
            pass
        # Waiting here stops reading the peer's connection, so a node that
        # falls behind pushes back on its peers' send buffers (which drop and
        # count) instead of losing messages the peers believe were sent.
        with trio.move_on_after(self._options.idle_timeout):
            await self._inbox_in.send(delivery)
            return True
        return False

    async def _keep_dialing(self, link: PeerLink) -> None:
        """Dial the peer whenever its link has an address and no connection."""
        backoff = Backoff(self._options, self._rng)
        failures = 0
        with trio.CancelScope() as scope:
            link.dial_scope = scope
            if link.closed:
                return
            while True:
                await link.wait_until_unconnected()
                address = link.address
                assert address is not None  # wait_until_unconnected returns only with one
                link.dialing = True
                try:
                    conn = await self._dial(link.peer, address)
                except LINK_ERRORS as exc:
                    conn = None
                    failures += 1
                    # The first failure after contact is news; the rest are the same news.
                    level = logging.INFO if failures == 1 else logging.DEBUG
                    logger.log(level, "%s: cannot reach %s at %s: %s (attempt %d; retrying)",
                               self.node_id, link.peer, address, describe(exc), failures)
                finally:
                    link.dialing = False
                if conn is not None:
                    failures = 0
                    backoff.reset()
                    if link.claim(conn):
                        await link.run(conn)
                    else:
                        await conn.stream.aclose()
                await trio.sleep(backoff.next())

    async def _dial(self, peer: str, address: Address) -> Connection | None:
        """Connect to `peer` and exchange hellos; None if it keeps another connection."""
        stream = await open_stream(
            address,
            connect_timeout=self.settings.connect_timeout,
            tls=self._tls.client if self._tls is not None else None,
            handshake_timeout=self._options.handshake_timeout,
        )
        framed = FramedStream(stream, max_frame=self.settings.max_frame, remote=str(address))
        try:
            with trio.fail_after(self._options.handshake_timeout):
                await framed.send(encode_frame(self._hello))
                hello = self._check_hello(await framed.receive())
            if hello.node_id != peer:
                raise WireError(f"tcp.hello: dialed {peer} at {address}, but {hello.node_id} answered")
        except BaseException:
            await framed.aclose()
            raise
        if not hello.accepted:
            logger.debug("%s: %s keeps another connection to this node", self.node_id, peer)
            await framed.aclose()
            return None
        return Connection(framed, dialer=self.node_id, incarnation=hello.incarnation,
                          advertise=_advertised(hello))

    async def _accept_peer(self, tcp: trio.SocketStream) -> None:
        """Run one inbound peer connection (a listener's handler)."""
        remote = remote_of(tcp)
        stream: trio.abc.Stream = tcp
        framed: FramedStream | None = None
        try:
            with trio.fail_after(self._options.handshake_timeout):
                if self._tls is not None:
                    stream = await handshake(tcp, self._tls.server, server_hostname=None)
                framed = FramedStream(stream, max_frame=self.settings.max_frame, remote=remote)
                hello = self._check_hello(await framed.receive())
            if hello.node_id == self.node_id:
                raise WireError(f"tcp.hello: the peer claims this node's own id {hello.node_id!r}")
        except LINK_ERRORS as exc:
            level = logging.WARNING if isinstance(exc, WireError) else logging.DEBUG
            logger.log(level, "%s: peer connection from %s refused: %s", self.node_id, remote, describe(exc))
            if framed is not None:
                await framed.aclose()
            else:
                with trio.move_on_after(CLOSE_GRACE_S, shield=True):
                    await stream.aclose()
            return
        link = self._links.get(hello.node_id) or self._add_link(hello.node_id, None)
        conn = Connection(framed, dialer=hello.node_id, incarnation=hello.incarnation, advertise=_advertised(hello))
        if link.claim(conn):
            await link.run(conn, greeting=encode_frame(self._hello))
        else:
            logger.debug("%s: keeping the existing connection to %s; refusing the one from %s",
                         self.node_id, hello.node_id, remote)
            try:
                with trio.move_on_after(self._options.write_timeout):
                    await framed.send(encode_frame(attrs.evolve(self._hello, accepted=False)))
            except LINK_ERRORS:
                pass  # the dialer hears the refusal as a closed connection instead
            finally:
                await framed.aclose()
        if link.address is None and link.active is None and self._links.get(link.peer) is link:
            # It was never a peer of ours; forget it once it hangs up.
            del self._links[link.peer]
            link.close()

    def _check_hello(self, message: Any) -> Hello:
        if message is None:
            raise trio.BrokenResourceError("closed during the handshake")
        if not isinstance(message, Hello):
            raise WireError(f"handshake: expected tcp.hello, got {tag_name(message)}")
        if not message.node_id or len(message.node_id) > MAX_NODE_ID:
            raise WireError(f"tcp.hello.node_id: {message.node_id[:80]!r} is not a node id")
        return message

    async def _listen(self, address: Address) -> list[trio.SocketListener]:
        try:
            return await trio.open_tcp_listeners(address.port, host=address.host)
        except OSError as exc:
            raise Unavailable(f"tcp transport {self.node_id}: cannot listen on {address}: {describe(exc)}") from None


def _bound(listeners: list[trio.SocketListener]) -> Address:
    host, port = listeners[0].socket.getsockname()[:2]
    return Address(host=host, port=port)


def _advertised(hello: Hello) -> Address | None:
    try:
        return Address.parse(hello.advertise)
    except ValueError:  # only shown in `links()`; a peer's typo must not cost the link
        return None

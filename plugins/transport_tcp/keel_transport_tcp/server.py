"""The node's side of client connections: requests in, replies out.

A client connection carries `keel.request` frames one way and
`keel.response` frames back, matched by the id the client chose. Requests
are answered concurrently, up to `max_client_requests` per connection;
past that the connection is not read until one finishes, so a client that
floods only slows itself. A handler's `KeelError` goes back typed; any other
exception is a bug in the node: it is logged here, and the client hears
only that an internal error happened.
"""

from __future__ import annotations

import logging
import socket
import ssl

import trio

from keel.errors import KeelError, WireError
from keel.transport import Request, RequestHandler, Response, error_reply
from keel.wire import encode_frame

from keel_transport_tcp.messages import tag_name
from keel_transport_tcp.options import TcpOptions
from keel_transport_tcp.stream import CLOSE_GRACE_S, LINK_ERRORS, FramedStream, describe, remote_of
from keel_transport_tcp.tls import handshake

__all__ = ["ClientService"]

logger = logging.getLogger("keel.transport.tcp")


class ClientService:
    """Answers the requests of every client connected to one node."""

    def __init__(
        self,
        node_id: str,
        handler: RequestHandler,
        *,
        max_frame: int,
        options: TcpOptions,
        tls: ssl.SSLContext | None,
    ) -> None:
        self._node_id = node_id
        self._handler = handler
        self._max_frame = max_frame
        self._options = options
        self._tls = tls

    async def serve_connection(self, tcp: trio.SocketStream) -> None:
        """Run one client connection until it closes or fails (a listener's handler)."""
        remote = remote_of(tcp)
        stream: trio.abc.Stream = tcp
        try:
            # A client may be quiet for hours, so there is no idle timeout here;
            # the kernel's keepalive finds the ones whose machine vanished.
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            if self._tls is not None:
                with trio.fail_after(self._options.handshake_timeout):
                    stream = await handshake(tcp, self._tls, server_hostname=None)
            session = _Session(self, FramedStream(stream, max_frame=self._max_frame, remote=remote), self._options)
            await session.run()
        except LINK_ERRORS as exc:
            level = logging.WARNING if isinstance(exc, WireError) else logging.DEBUG
            logger.log(level, "%s: client %s dropped: %s", self._node_id, remote, describe(exc))
        finally:
            # Closing the TLS stream closed this too; a failed handshake did not.
            with trio.move_on_after(CLOSE_GRACE_S, shield=True):
                await tcp.aclose()

    async def answer(self, request: Request, remote: str) -> bytes:
        """The response frame for one request, whatever the handler does."""
        try:
            reply = await self._handler(request.body)
        except KeelError as exc:
            reply = error_reply(exc)
        except Exception as exc:  # noqa: BLE001 - a handler bug must not kill the connection; it is logged
            logger.exception("%s: request handler failed on %s from client %s",
                             self._node_id, tag_name(request.body), remote)
            reply = error_reply(exc)
        try:
            return encode_frame(Response(request.id, reply), max_frame=self._max_frame)
        except (TypeError, ValueError) as exc:  # unregistered reply type, or too large to send
            logger.error("%s: cannot send the reply to %s from client %s: %s",
                         self._node_id, tag_name(request.body), remote, exc)
            return encode_frame(Response(request.id, error_reply(exc)), max_frame=self._max_frame)


class _Session:
    """One client connection: a reader that starts an answering task per request."""

    def __init__(self, service: ClientService, stream: FramedStream, options: TcpOptions) -> None:
        self._service = service
        self._stream = stream
        self._write_timeout = options.write_timeout
        limit = options.max_client_requests
        self._slots = trio.Semaphore(limit, max_value=limit)
        self._failure: BaseException | None = None

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                await self._read(nursery)
                # The client left (or broke the stream): answers in progress have nobody to go to.
                nursery.cancel_scope.cancel()
        finally:
            await self._stream.aclose()
        if self._failure is not None:
            raise self._failure

    async def _read(self, nursery: trio.Nursery) -> None:
        while self._failure is None:
            try:
                message = await self._stream.receive()
            except LINK_ERRORS as exc:
                self._failure = exc
                return
            if message is None:
                return
            if not isinstance(message, Request):
                self._failure = WireError(f"client connection: expected keel.request, got {tag_name(message)}")
                return
            await self._slots.acquire()
            nursery.start_soon(self._answer, message, nursery.cancel_scope)

    async def _answer(self, request: Request, scope: trio.CancelScope) -> None:
        try:
            frame = await self._service.answer(request, self._stream.remote)
            with trio.fail_after(self._write_timeout):
                await self._stream.send_shared(frame)
        except LINK_ERRORS as exc:
            # A reply cut off halfway leaves the stream unusable: end the connection.
            if self._failure is None:
                self._failure = exc
            scope.cancel()
        finally:
            self._slots.release()


"""A client's connection to one node, with requests multiplexed by id.

The client owns no background task, so it needs no nursery from its
caller: whichever waiting request finds nobody reading becomes the reader,
routes every response it reads to the request with that id, and hands the
role on when its own reply arrives (or its deadline passes). A read cut
short by a deadline loses no bytes, so the next reader picks up mid-frame.
A write cut short does leave half a frame on the wire, so it breaks the
connection; so does anything but a response from the node. A broken
connection fails every request on it with `Unavailable`.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import trio

from keel.address import Address
from keel.errors import Unavailable
from keel.transport import ClientSettings, Request, Response, TransportClient, raise_if_error
from keel.wire import encode_frame

from keel_transport_tcp.messages import tag_name
from keel_transport_tcp.options import TcpOptions
from keel_transport_tcp.stream import LINK_ERRORS, FramedStream, describe, open_stream
from keel_transport_tcp.tls import contexts

__all__ = ["TcpClient", "connect"]

logger = logging.getLogger("keel.transport.tcp")


class _Waiting:
    """One request waiting for its response."""

    def __init__(self) -> None:
        self.reply: Any = None
        self.answered = False
        self.wake = trio.Event()  # set when answered, or when the reader role is free

    def nudge(self) -> None:
        self.wake.set()


class TcpClient(TransportClient):
    """A connection to a node's client address."""

    def __init__(self, stream: FramedStream, address: Address, *, max_frame: int) -> None:
        self._stream = stream
        self._address = address
        self._max_frame = max_frame
        self._ids = itertools.count()
        self._waiting: dict[int, _Waiting] = {}
        self._reading = False
        self._broken: str | None = None  # why no more requests can succeed

    async def request(self, message: Any, *, timeout: float) -> Any:
        """Send one request and return its reply (see `TransportClient.request`).

        Raises:
            Unavailable: no reply within `timeout`, or the connection broke.
            KeelError: the node answered with an error.
            TypeError, ValueError: `message` is not a registered message, or
                its frame exceeds the maximum.
        """
        request_id = next(self._ids)
        frame = encode_frame(Request(request_id, message), max_frame=self._max_frame)
        waiting = _Waiting()
        self._waiting[request_id] = waiting
        try:
            with trio.move_on_after(timeout):
                await self._send(frame)
                await self._await_reply(waiting)
        finally:
            del self._waiting[request_id]
        if waiting.answered:
            return raise_if_error(waiting.reply)
        if self._broken is not None:
            raise Unavailable(f"{self._address}: {self._broken}")
        raise Unavailable(f"{self._address}: no reply within {timeout:g} s")

    async def aclose(self) -> None:
        """Close the connection; requests still waiting fail with `Unavailable`."""
        self._break("connection closed by the client")
        await self._stream.aclose()

    async def _send(self, frame: bytes) -> None:
        if self._broken is not None:
            return
        try:
            await self._stream.send_shared(frame)
        except LINK_ERRORS as exc:
            self._break(f"connection failed: {describe(exc)}")
        except BaseException:
            # Cancelled: harmless while the frame waited its turn (another
            # task writes it whole), fatal if it came mid-write.
            if self._stream.torn:
                self._break("a request was abandoned halfway through sending")
            raise

    async def _await_reply(self, waiting: _Waiting) -> None:
        while not waiting.answered and self._broken is None:
            if self._reading:
                await waiting.wake.wait()
                waiting.wake = trio.Event()
                continue
            self._reading = True
            try:
                while not waiting.answered and self._broken is None:
                    self._route(await self._stream.receive())
            except LINK_ERRORS as exc:
                self._break(f"connection failed: {describe(exc)}")
            finally:
                self._reading = False
                self._hand_on_reading()

    def _hand_on_reading(self) -> None:
        # Wake one request still waiting to read in our place; waking them all
        # would cost every reply a wake-up per request in flight.
        for other in self._waiting.values():
            if not other.answered:
                other.nudge()
                return

    def _route(self, message: Any) -> None:
        if message is None:
            self._break("connection closed by the node")
        elif not isinstance(message, Response):
            self._break(f"protocol error: the node sent {tag_name(message)}, not keel.response")
        else:
            waiting = self._waiting.get(message.id)
            if waiting is not None:  # else its request gave up already
                waiting.reply, waiting.answered = message.body, True
                waiting.nudge()

    def _break(self, reason: str) -> None:
        if self._broken is None:
            self._broken = reason
            logger.debug("client of %s: %s", self._address, reason)
        for waiting in self._waiting.values():
            waiting.nudge()


async def connect(address: Address, settings: ClientSettings) -> TcpClient:
    """Connect to the node whose client address is `address`.

    Raises:
        Unavailable: nothing accepted the connection, or the TLS handshake
            failed, within the settings' deadlines.
        ConfigError: the TLS files cannot be loaded.
    """
    options = settings.options if settings.options is not None else TcpOptions()
    tls = contexts(settings.tls).client if settings.tls is not None else None
    try:
        stream = await open_stream(
            address,
            connect_timeout=settings.connect_timeout,
            tls=tls,
            handshake_timeout=options.handshake_timeout,
        )
    except LINK_ERRORS as exc:
        raise Unavailable(f"{address}: cannot connect: {describe(exc)}") from None
    return TcpClient(FramedStream(stream, max_frame=settings.max_frame, remote=str(address)), address,
                     max_frame=settings.max_frame)

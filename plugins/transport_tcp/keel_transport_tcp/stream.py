"""A connection carrying keel frames, and opening one.

Every connection of the TCP transport, peer or client, is a `FramedStream`:
a Trio stream (TCP, or TLS over TCP) with a frame decoder on its receiving
side. The decoder keeps a partial frame across reads, and a read cancelled
by a timeout loses no bytes, so a caller may wrap `receive` in a deadline
and call it again. A *send* cancelled halfway leaves a partial frame on the
wire, so the stream must then be closed.
"""

from __future__ import annotations

import collections
import ssl
from typing import Any

import trio

from keel.address import Address
from keel.errors import WireError
from keel.wire import FrameDecoder

from keel_transport_tcp.tls import handshake

__all__ = ["CLOSE_GRACE_S", "LINK_ERRORS", "FramedStream", "describe", "open_stream", "remote_of"]

RECEIVE_CHUNK = 64 * 1024  # bytes per read; large enough that an append batch takes few reads
CLOSE_GRACE_S = 1.0  # seconds a close may take (TLS close_notify) before the socket is dropped

# What one connection's failure looks like; each ends that connection only.
LINK_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError, WireError)


class FramedStream:
    """Frames in both directions over one byte stream."""

    def __init__(self, stream: trio.abc.Stream, *, max_frame: int, remote: str) -> None:
        self.remote = remote  # `host:port` of the far end, for logs
        self.local = _socket_name(stream, far=False)  # `host:port` of this end; with `remote`, names the connection
        self._stream = stream
        self._decoder = FrameDecoder(max_frame=max_frame)
        self._ready: collections.deque[Any] = collections.deque()
        self._queued: list[bytes] = []  # frames waiting for the writer (send_shared)
        self._write_lock = trio.Lock()
        self.torn = False  # a write stopped partway (cancelled or failed): the far end may hold half a frame

    async def receive(self) -> Any | None:
        """The next message, or None once the far end has closed.

        Raises:
            WireError: the far end sent bytes that are not a valid frame.
            trio.BrokenResourceError: the connection failed.
        """
        if not self._ready and not await self._fill():
            return None
        return self._ready.popleft()

    async def receive_batch(self) -> list[Any] | None:
        """Every message complete so far, reading if there is none; None once closed.

        Cheaper than `receive` per message when many arrive together.
        """
        if not self._ready and not await self._fill():
            return None
        batch = list(self._ready)
        self._ready.clear()
        return batch

    async def _fill(self) -> bool:
        while not self._ready:
            data = await self._stream.receive_some(RECEIVE_CHUNK)
            if not data:
                return False
            self._ready.extend(self._decoder.feed(data))
        return True

    async def send(self, frames: bytes) -> None:
        """Write whole encoded frames; one task at a time."""
        await self._write(frames)

    async def send_shared(self, frame: bytes) -> None:
        """Write one frame from any of many tasks, sharing writes between them.

        The frame joins a queue; whichever task holds the write lock writes
        everything queued in one `send_all`, so many requests (or replies) in
        flight cost one system call, not one each. A caller returns once its
        frame has been handed to the stream. If a write fails, the caller that
        wrote gets the error; the others' frames went down with it, and they
        learn of it from the broken connection.
        """
        self._queued.append(frame)
        async with self._write_lock:
            if not self._queued:  # another task wrote ours
                return
            data = b"".join(self._queued)
            self._queued.clear()
            await self._write(data)

    async def _write(self, data: bytes) -> None:
        try:
            await self._stream.send_all(data)
        except BaseException:
            self.torn = True
            raise

    async def aclose(self) -> None:
        """Close, giving a TLS goodbye a bounded moment. Idempotent."""
        with trio.move_on_after(CLOSE_GRACE_S, shield=True):
            await self._stream.aclose()


def remote_of(stream: trio.abc.Stream) -> str:
    """`host:port` of the far end of a TCP (or TLS over TCP) stream."""
    return _socket_name(stream, far=True)


def _socket_name(stream: trio.abc.Stream, *, far: bool) -> str:
    transport = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
    try:
        sock = transport.socket  # type: ignore[attr-defined]
        host, port = (sock.getpeername() if far else sock.getsockname())[:2]
    except (AttributeError, OSError):  # not a socket, or the far end already left
        return "unknown"
    return str(Address(host=host, port=port))


async def open_stream(
    address: Address,
    *,
    connect_timeout: float,
    tls: ssl.SSLContext | None,
    handshake_timeout: float,
) -> trio.abc.Stream:
    """Dial `address`, and do the TLS handshake if `tls` is given.

    Raises:
        OSError: the connection was refused or the host is unreachable.
        trio.TooSlowError: connecting or the handshake took too long.
        trio.BrokenResourceError: the TLS handshake failed.
    """
    with trio.fail_after(connect_timeout):
        tcp = await trio.open_tcp_stream(address.host, address.port)
    if tls is None:
        return tcp
    try:
        with trio.fail_after(handshake_timeout):
            return await handshake(tcp, tls, server_hostname=address.host)
    except BaseException:
        with trio.move_on_after(CLOSE_GRACE_S, shield=True):
            await tcp.aclose()
        raise


def describe(exc: BaseException) -> str:
    """One line that says why a connection failed."""
    if isinstance(exc, trio.TooSlowError):
        return "timed out"
    if isinstance(exc, trio.BrokenResourceError) and exc.__cause__ is not None:
        return describe(exc.__cause__)
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__

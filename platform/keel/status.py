"""What a node says about itself when asked (`keel status`)."""

from __future__ import annotations

from typing import Any

import attrs
import trio

from keel.address import Address
from keel.core.api import CoreStatusReply
from keel.data.api import DataStatusReply
from keel.errors import Unavailable
from keel.transport import ClientSettings
from keel.wire import message

__all__ = ["PeerView", "StatusReply", "StatusRequest", "fetch_status"]

CLOSE_GRACE_S = 1.0  # seconds to close a status connection politely


@message("keel.status.request")
@attrs.frozen
class StatusRequest:
    """Ask a node for its status."""


@attrs.frozen
class PeerView:
    """One peer as the answering node sees it."""

    id: str
    connected: bool  # the transport has a live link
    alive: bool  # heartbeats arrive
    last_heard: float | None  # seconds since the last heartbeat, None if never
    sent: int
    dropped: int
    received: int


@message("keel.status.reply")
@attrs.frozen(kw_only=True)
class StatusReply:
    """A node's view of itself. Later fields are optional so old nodes still answer."""

    node_id: str
    roles: tuple[str, ...]
    pid: int
    version: str
    uptime: float  # seconds since the node started serving
    peer_address: str
    client_address: str
    transport: str
    peers: tuple[PeerView, ...] = ()
    core: CoreStatusReply | None = None  # a core node's engine and state machine
    data: DataStatusReply | None = None  # a data node's map epoch, partitions and records


async def fetch_status(connect: Any, address: Address, settings: ClientSettings, *, timeout: float) -> StatusReply:
    """Ask the node at client address `address` for its status.

    Raises:
        Unavailable: the node did not answer within `timeout` seconds.
    """
    with trio.move_on_after(timeout) as scope:
        client = await connect(address, settings)
        try:
            reply = await client.request(StatusRequest(), timeout=timeout)
        finally:
            with trio.move_on_after(CLOSE_GRACE_S, shield=True):
                await client.aclose()
        if not isinstance(reply, StatusReply):
            raise Unavailable(f"{address}: answered a status request with {type(reply).__name__}")
        return reply
    assert scope.cancelled_caught
    raise Unavailable(f"{address}: no answer within {timeout:g} s")

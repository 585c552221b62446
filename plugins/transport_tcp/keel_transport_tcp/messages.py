"""The TCP transport's own messages: the handshake and the keepalive.

Tags live under `tcp.`; every other message on a peer link is the
application's, delivered as it arrived.
"""

from __future__ import annotations

from typing import Any

import attrs

from keel.wire import message, tag_of

__all__ = ["Hello", "Ping", "tag_name"]


@message("tcp.hello")
@attrs.frozen
class Hello:
    """First frame each way on a peer connection: who is at this end.

    The dialer sends it first and the acceptor answers with its own, so both
    ends know the connection's dialer, which decides which of two connections
    between one pair survives.
    """

    node_id: str
    advertise: str  # `host:port` peers should dial this node at
    # Random per serving run: a different value on a new connection means the
    # peer restarted, so the connection we hold to it is stale.
    incarnation: int
    # In the acceptor's answer: False when it keeps another connection to the
    # dialer (see `link.py`), and the dialer must close this one unused.
    accepted: bool = True


@message("tcp.ping")
@attrs.frozen
class Ping:
    """Sent on an otherwise idle link so the far end knows it is alive."""


def tag_name(value: Any) -> str:
    """The wire tag of a decoded message, for saying what arrived instead."""
    try:
        return tag_of(type(value))
    except KeyError:  # not a message at all
        return type(value).__name__

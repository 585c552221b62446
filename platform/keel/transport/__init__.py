"""Transports: the interface every transport plugin implements, and its messages."""

from keel.transport.envelope import ErrorReply, Request, Response, error_reply, raise_if_error
from keel.transport.interface import (
    SEND_BUFFER,
    BoundAddresses,
    ClientSettings,
    Delivery,
    LinkStatus,
    RequestHandler,
    TlsSettings,
    Transport,
    TransportClient,
    TransportSettings,
)

__all__ = [
    "SEND_BUFFER",
    "BoundAddresses",
    "ClientSettings",
    "Delivery",
    "ErrorReply",
    "LinkStatus",
    "Request",
    "RequestHandler",
    "Response",
    "TlsSettings",
    "Transport",
    "TransportClient",
    "TransportSettings",
    "error_reply",
    "raise_if_error",
]

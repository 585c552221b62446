"""The `tcp` transport plugin: what keel loads through the entry point."""

from __future__ import annotations

from keel import hookimpl
from keel.contract import TransportPlugin

from keel_transport_tcp.client import connect
from keel_transport_tcp.options import TcpOptions
from keel_transport_tcp.transport import TcpTransport

__all__ = ["KEEL_CONTRACT", "VERSION", "keel_transports"]

KEEL_CONTRACT = "1.0"
VERSION = "0.1.0"


@hookimpl
def keel_transports() -> list[TransportPlugin]:
    return [
        TransportPlugin(
            name="tcp",
            version=VERSION,
            create=TcpTransport,
            connect=connect,
            options=TcpOptions,
            summary="TCP between nodes and for clients; one connection per peer pair, optional mutual TLS",
        )
    ]

"""keel's TCP transport: peer links and client connections over TCP, optionally TLS."""

from keel_transport_tcp.client import TcpClient, connect
from keel_transport_tcp.options import TcpOptions
from keel_transport_tcp.plugin import VERSION
from keel_transport_tcp.transport import TcpTransport

__all__ = ["VERSION", "TcpClient", "TcpOptions", "TcpTransport", "connect"]

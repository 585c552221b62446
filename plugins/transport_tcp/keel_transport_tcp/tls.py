"""TLS for the TCP transport: mutual authentication against one authority.

Every node and client holds a certificate signed by the configured authority
and refuses a far end that does not. The dialing side also checks that the
certificate names the host it dialed, so a certificate must list the names
or IP addresses that peers and clients use to reach the node.
"""

from __future__ import annotations

import ssl

import trio

from keel.errors import ConfigError
from keel.transport import TlsSettings

__all__ = ["TlsContexts", "contexts", "handshake"]

FIELD = "network.tls"  # where a node config holds these settings, for error messages


class TlsContexts:
    """The two halves of one endpoint's TLS: accepting and dialing."""

    def __init__(self, server: ssl.SSLContext, client: ssl.SSLContext) -> None:
        self.server = server
        self.client = client


def contexts(settings: TlsSettings) -> TlsContexts:
    """Load the certificate, key and authority named by `settings`.

    Raises:
        ConfigError: a file is missing, unreadable or not valid PEM.
    """
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    for context in (server, client):
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.verify_mode = ssl.CERT_REQUIRED
        _load(context, settings)
    return TlsContexts(server, client)


def _load(context: ssl.SSLContext, settings: TlsSettings) -> None:
    try:
        context.load_verify_locations(cafile=settings.ca)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{FIELD}.ca", f"{settings.ca}: cannot load the authority ({_reason(exc)})") from None
    try:
        context.load_cert_chain(certfile=settings.cert, keyfile=settings.key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"{FIELD}.cert", f"{settings.cert} with key {settings.key}: cannot load the certificate ({_reason(exc)})"
        ) from None


def _reason(exc: OSError) -> str:
    # An SSLError's strerror is terse; its str() names the library and reason.
    return str(exc) if isinstance(exc, ssl.SSLError) else exc.strerror or str(exc)


async def handshake(
    stream: trio.abc.Stream,
    context: ssl.SSLContext,
    *,
    server_hostname: str | None,
) -> trio.SSLStream[trio.abc.Stream]:
    """Wrap `stream` in TLS and complete the handshake.

    The caller bounds the wait. `server_hostname` None means this is the
    accepting side.

    Raises:
        trio.BrokenResourceError: the handshake failed (bad certificate,
            wrong authority, not TLS at all); `__cause__` says why.
    """
    tls = trio.SSLStream(stream, context, server_side=server_hostname is None, server_hostname=server_hostname)
    await tls.do_handshake()
    return tls

"""How long a client waits, and through which transport it talks."""

from __future__ import annotations

import attrs
from attrs.validators import gt, instance_of

__all__ = ["DEFAULT_DEADLINE_S", "DEFAULT_REQUEST_TIMEOUT_S", "ClientOptions"]

DEFAULT_REQUEST_TIMEOUT_S = 5.0  # seconds one attempt at one node may take; the core's own request timeout
DEFAULT_DEADLINE_S = 15.0  # seconds one call may take over all its retries; many leader elections' worth
DEFAULT_CONNECT_TIMEOUT_S = 2.0  # seconds to open a connection to one node


def _seconds() -> list:
    return [instance_of((int, float)), gt(0)]


@attrs.frozen(kw_only=True)
class ClientOptions:
    """A client's time budget and transport.

    `deadline` bounds one call over all its attempts, backoff included; a
    watch poll, lock or campaign also gets the time the node may hold it.
    """

    transport: str = attrs.field(default="tcp", validator=instance_of(str))
    request_timeout: float = attrs.field(default=DEFAULT_REQUEST_TIMEOUT_S, validator=_seconds())
    deadline: float = attrs.field(default=DEFAULT_DEADLINE_S, validator=_seconds())
    connect_timeout: float = attrs.field(default=DEFAULT_CONNECT_TIMEOUT_S, validator=_seconds())

"""Leases: grant, revoke, keep alive.

Part of the core's client protocol; see `keel.core.api`.
"""

from __future__ import annotations

import attrs

from keel.wire import message

__all__ = ["LeaseGrant", "LeaseGrantReply", "LeaseKeepAlive", "LeaseKeepAliveReply", "LeaseRevoke", "LeaseRevokeReply"]


# --- leases ------------------------------------------------------------------------------


@message("core.lease_grant")
@attrs.frozen
class LeaseGrant:
    """Create a lease of `ttl` seconds (a mutation)."""

    ttl: float  # seconds
    id: int = 0  # 0: the node picks one


@message("core.lease_grant_reply")
@attrs.frozen
class LeaseGrantReply:
    """The lease granted, its TTL, and the keyspace revision then."""

    id: int
    ttl: float
    revision: int


@message("core.lease_revoke")
@attrs.frozen
class LeaseRevoke:
    """End lease `id` now and delete its keys (a mutation)."""

    id: int


@message("core.lease_revoke_reply")
@attrs.frozen
class LeaseRevokeReply:
    """The revision at which the lease's keys were deleted."""

    revision: int


@message("core.lease_keepalive")
@attrs.frozen
class LeaseKeepAlive:
    """Restart the lease's clock at the leader; not logged (a new leader restarts every clock)."""

    id: int


@message("core.lease_keepalive_reply")
@attrs.frozen
class LeaseKeepAliveReply:
    """The lease lives `ttl` seconds from when the leader answered."""

    id: int
    ttl: float

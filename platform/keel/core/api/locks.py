"""Locks and elections, both queues of keys under a lease.

Part of the core's client protocol; see `keel.core.api`.
"""

from __future__ import annotations

import attrs

from keel.core.api.keys import KeyValue
from keel.wire import message

__all__ = ["Campaign", "CampaignReply", "Leader", "LeaderReply", "Lock", "LockReply", "ReleaseReply", "Resign", "Unlock"]


# --- locks and elections ---------------------------------------------------------------


@message("core.lock")
@attrs.frozen
class Lock:
    """Queue for lock `name` under `lease`; answered once held, or after `wait` seconds still queued.

    Asking again with the same name and lease keeps the same place in the
    queue. The holder is the queued key with the lowest create revision;
    its create revision is the fencing token, which only grows.
    """

    name: bytes
    lease: int
    wait: float = 1.0


@message("core.lock_reply")
@attrs.frozen
class LockReply:
    """The queued key, its fencing token, and whether it holds the lock."""

    key: bytes
    token: int  # the key's create revision
    acquired: bool


@message("core.unlock")
@attrs.frozen
class Unlock:
    """Release a lock by deleting its key (a mutation)."""

    key: bytes


@message("core.release_reply")
@attrs.frozen
class ReleaseReply:
    """The answer to `Unlock` and `Resign`."""

    revision: int


@message("core.campaign")
@attrs.frozen
class Campaign:
    """Stand in election `name` with `value`; answered once elected, or after `wait` seconds."""

    name: bytes
    lease: int
    value: bytes
    wait: float = 1.0


@message("core.campaign_reply")
@attrs.frozen
class CampaignReply:
    """The candidacy's key, its create revision, and whether it leads."""

    key: bytes
    revision: int  # the candidacy's create revision
    elected: bool


@message("core.leader")
@attrs.frozen
class Leader:
    """Who leads election `name` now."""

    name: bytes


@message("core.leader_reply")
@attrs.frozen
class LeaderReply:
    """The elected candidacy, or None when nobody stands."""

    leader: KeyValue | None  # the elected candidacy (its value), None when nobody stands
    revision: int


@message("core.resign")
@attrs.frozen
class Resign:
    """Withdraw a candidacy by deleting its key (a mutation)."""

    key: bytes

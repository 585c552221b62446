"""Locks and elections: waiting for the first place in a queue of keys.

The core keeps a lock's waiters (an election's candidates) as keys
attached to their leases; the one created first holds the lock (leads).
A `Lock` or `Campaign` request joins the queue and is answered once first,
or after its `wait` still queued; asking again with the same name and
lease keeps the place. Each ask is a new mutating request (a new seq):
the core logs it, so a retry of one ask after a leader change is still
answered once.
"""

from __future__ import annotations

from typing import Any

from keel.client.caller import Caller
from keel.client.lease import Lease
from keel.core.api import Campaign, CampaignReply, Lock, LockReply

__all__ = ["QUEUE_WAIT_S", "campaign", "lock"]

QUEUE_WAIT_S = 5.0  # seconds the core may hold one ask; within the core's limit (keel.core.server.MAX_WAIT_S)


async def _queue(caller: Caller, lease: Lease, op: Any) -> Any:
    while True:
        lease.check()  # a lost lease lost its place: do not ask again
        reply = await caller.mutate(op, wait=QUEUE_WAIT_S)
        if reply.acquired if isinstance(reply, LockReply) else reply.elected:
            return reply


async def lock(caller: Caller, name: bytes, lease: Lease) -> LockReply:
    """Wait until lock `name` is held under `lease`; the reply's token is its fencing token.

    Raises:
        LeaseExpired: the lease ended while waiting.
        Unavailable: the core did not answer one ask within the deadline.
        KeelError: a name the core refuses (empty, over 256 bytes, or with "/").
    """
    return await _queue(caller, lease, Lock(name, lease.id, QUEUE_WAIT_S))


async def campaign(caller: Caller, name: bytes, lease: Lease, value: bytes) -> CampaignReply:
    """Wait until this candidacy (under `lease`, proclaiming `value`) leads election `name`.

    Raises:
        LeaseExpired, Unavailable, KeelError: as for `lock`.
    """
    return await _queue(caller, lease, Campaign(name, lease.id, value, QUEUE_WAIT_S))

"""The core's client protocol: what a client asks a core node, and what it answers.

Every request travels in a `Call`: the client's id and sequence number make
a mutating request idempotent (the state machine answers a retried request
with its first answer; `keel.core.sessions`), and `acked` tells the node
which answers the client no longer needs. Reads, watches and lease
keep-alives change nothing in the log and carry `seq = 0`.

Keys and values are bytes. Revisions follow etcd's meaning: the keyspace's
revision grows by one for every request that changes it; a key's
`create_revision` and `mod_revision` are the revisions of its creation and
last change, its `version` the number of puts since its creation. A reply
carries the keyspace revision it was served at.

Locks and elections are keys too, so watches and ranges see them: a lock
`name`'s queue is `keel/lock/<name>/<lease id, 16 hex digits>`, an
election's candidates `keel/election/<name>/<lease id>`, each attached to
its lease; the first by create revision holds the lock or leads. Like etcd,
keel does not stop a client from writing or deleting those keys itself:
deleting one releases that lock.

Errors come back as typed errors (`keel.errors`): `NotLeader` with a hint,
`Compacted` for a watch from a forgotten revision, `LeaseExpired` for a
lease that is gone, `KeelError` for a request that breaks a rule.
"""

from __future__ import annotations

import attrs

from keel.wire import AnyMessage, message

__all__ = [
    "MUTATIONS",
    "Batch",
    "BatchReply",
    "Call",
    "Campaign",
    "CampaignReply",
    "ChangeMembership",
    "Compact",
    "CompactReply",
    "Compare",
    "CoreStatus",
    "CoreStatusReply",
    "Delete",
    "DeleteReply",
    "Event",
    "KeyValue",
    "Leader",
    "LeaderReply",
    "LeaseGrant",
    "LeaseGrantReply",
    "LeaseKeepAlive",
    "LeaseKeepAliveReply",
    "LeaseRevoke",
    "LeaseRevokeReply",
    "Lock",
    "LockReply",
    "MembershipReply",
    "Put",
    "PutReply",
    "Range",
    "RangeReply",
    "ReleaseReply",
    "Resign",
    "Txn",
    "TxnReply",
    "Unlock",
    "Watch",
    "WatchReply",
]


# --- what the keyspace holds ---------------------------------------------------


@attrs.frozen
class KeyValue:
    """A key as it stands at some revision."""

    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int  # puts since creation; 0 only in a delete event
    lease: int = 0  # the lease it is attached to; 0: none


@attrs.frozen
class Event:
    """A change to one key: `kind` "put" (kv after it) or "delete" (kv.mod_revision = the delete's revision)."""

    kind: str
    kv: KeyValue


# --- the envelope ------------------------------------------------------------------


@message("core.call")
@attrs.frozen
class Call:
    """One client request. `seq` > 0 for mutating requests, 0 for the rest."""

    client: str  # the client's session id, random per client
    seq: int  # 1, 2, 3… per client for requests that go through the log
    acked: int  # every seq up to here has been answered and will not be retried
    op: AnyMessage


# --- key-value ----------------------------------------------------------------------


@message("core.put")
@attrs.frozen
class Put:
    key: bytes
    value: bytes
    lease: int = 0  # attach to this lease (it must exist); 0 detaches
    prev_kv: bool = False  # return the key as it was before


@message("core.put_reply")
@attrs.frozen
class PutReply:
    revision: int
    prev: KeyValue | None = None


@message("core.range")
@attrs.frozen
class Range:
    """Read one key, or every key starting with `key` when `prefix`."""

    key: bytes
    prefix: bool = False
    limit: int = 0  # at most this many keys (0: all), in key order
    keys_only: bool = False  # values come back empty
    serializable: bool = False  # answer from this node's state without a read barrier (may be stale)


@message("core.range_reply")
@attrs.frozen
class RangeReply:
    revision: int
    kvs: tuple[KeyValue, ...]
    count: int  # keys in the range, also those past `limit`
    more: bool  # `limit` cut the answer short


@message("core.delete")
@attrs.frozen
class Delete:
    key: bytes
    prefix: bool = False
    prev_kv: bool = False


@message("core.delete_reply")
@attrs.frozen
class DeleteReply:
    revision: int
    deleted: int
    prev: tuple[KeyValue, ...] = ()


@message("core.compare")
@attrs.frozen
class Compare:
    """One condition of a `Txn`: `target` of `key` `op` the operand.

    `target` is "value" (compared with `value`), or "version", "create",
    "mod" or "lease" (compared with `number`). An absent key has version,
    create and mod revision 0; a value compare on it fails whatever the
    operator (as in etcd): test absence with `version == 0`.
    """

    key: bytes
    target: str
    op: str  # "==", "!=", "<", ">"
    value: bytes = b""
    number: int = 0


@message("core.txn")
@attrs.frozen
class Txn:
    """If every compare holds, run `success`, else `failure`: all at one revision."""

    compare: tuple[Compare, ...] = ()
    success: tuple[AnyMessage, ...] = ()  # Put, Delete, Range
    failure: tuple[AnyMessage, ...] = ()


@message("core.txn_reply")
@attrs.frozen
class TxnReply:
    revision: int
    succeeded: bool
    replies: tuple[AnyMessage, ...]  # one per operation run, in order


@message("core.compact")
@attrs.frozen
class Compact:
    """Forget the event history before `revision`; watches from earlier fail with `Compacted`."""

    revision: int


@message("core.compact_reply")
@attrs.frozen
class CompactReply:
    revision: int


# --- watches ---------------------------------------------------------------------------


@message("core.watch")
@attrs.frozen
class Watch:
    """Long poll: the events on `key` (or under it, with `prefix`) from `start_revision` on.

    The node answers as soon as there is at least one, or with none after
    `wait` seconds; the client asks again from `next_revision`, so it sees
    every event once, in order, whichever node it asks.
    """

    key: bytes
    prefix: bool = False
    start_revision: int = 0  # 0: from the next change
    wait: float = 1.0  # seconds the node may hold the request


@message("core.watch_reply")
@attrs.frozen
class WatchReply:
    events: tuple[Event, ...]
    next_revision: int  # where the next poll starts
    revision: int  # the keyspace revision the node has applied


# --- leases ------------------------------------------------------------------------------


@message("core.lease_grant")
@attrs.frozen
class LeaseGrant:
    ttl: float  # seconds
    id: int = 0  # 0: the node picks one


@message("core.lease_grant_reply")
@attrs.frozen
class LeaseGrantReply:
    id: int
    ttl: float
    revision: int


@message("core.lease_revoke")
@attrs.frozen
class LeaseRevoke:
    id: int


@message("core.lease_revoke_reply")
@attrs.frozen
class LeaseRevokeReply:
    revision: int


@message("core.lease_keepalive")
@attrs.frozen
class LeaseKeepAlive:
    """Restart the lease's clock at the leader; not logged (a new leader restarts every clock)."""

    id: int


@message("core.lease_keepalive_reply")
@attrs.frozen
class LeaseKeepAliveReply:
    id: int
    ttl: float


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
    key: bytes
    token: int  # the key's create revision
    acquired: bool


@message("core.unlock")
@attrs.frozen
class Unlock:
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
    leader: KeyValue | None  # the elected candidacy (its value), None when nobody stands
    revision: int


@message("core.resign")
@attrs.frozen
class Resign:
    key: bytes


# --- membership --------------------------------------------------------------------------


@message("core.change_membership")
@attrs.frozen
class ChangeMembership:
    """One server joins as a learner ("add_learner"), becomes a voter ("promote") or leaves ("remove").

    The leader starts the change through its log and answers with the
    configuration it now holds (the change may not be committed yet); ask
    again later to see it through. One change at a time: a second is
    refused while the first is in flight.
    """

    action: str
    node: str


@message("core.membership_reply")
@attrs.frozen
class MembershipReply:
    voters: tuple[str, ...]
    learners: tuple[str, ...] = ()


# --- batches ---------------------------------------------------------------------------


@message("core.batch")
@attrs.frozen
class Batch:
    """Several `Call`s in one request, answered together: one frame and one node task for many calls.

    Each call is handled as if it came alone (its own session seq, its own
    answer); none may hold the node (no watches, locks or campaigns). The
    node answers once every call has its answer, or its request timeout
    has passed (that call's answer is then `Unavailable`).
    """

    calls: tuple[Call, ...]


@message("core.batch_reply")
@attrs.frozen
class BatchReply:
    replies: tuple[AnyMessage, ...]  # one per call, in order: its reply, or an ErrorReply


# --- status ----------------------------------------------------------------------------


@message("core.status")
@attrs.frozen
class CoreStatus:
    """What this core node's engine and state machine say."""


@message("core.status_reply")
@attrs.frozen(kw_only=True)
class CoreStatusReply:
    node_id: str
    consensus: str
    role: str
    leader: str | None
    term: int
    commit_index: int
    applied_index: int
    last_index: int
    revision: int
    voters: tuple[str, ...]
    learners: tuple[str, ...] = ()
    log_bytes: int = 0


# Requests that go through the log (and so need a session sequence number).
MUTATIONS = (Put, Delete, Txn, Compact, LeaseGrant, LeaseRevoke, Lock, Unlock, Campaign, Resign)

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
its lease; the first by create revision holds the lock or leads. They live
under the reserved prefix `keel/` with every other key keel writes for
itself (`keel.core.api.system`): clients read and watch those keys, and
change them only through the typed requests (`Unlock` deletes a lock key,
`Put` under `keel/` is refused with `ReservedKey`).

Errors come back as typed errors (`keel.errors`): `NotLeader` with a hint,
`Compacted` for a watch from a forgotten revision, `LeaseExpired` for a
lease that is gone, `KeelError` for a request that breaks a rule.
"""

from keel.core.api.keys import Event, KeyValue
from keel.core.api.kv import Compact, CompactReply, Compare, Delete, DeleteReply, Put, PutReply, Range, RangeReply, Txn, \
    TxnReply
from keel.core.api.leases import LeaseGrant, LeaseGrantReply, LeaseKeepAlive, LeaseKeepAliveReply, LeaseRevoke, \
    LeaseRevokeReply
from keel.core.api.locks import Campaign, CampaignReply, Leader, LeaderReply, Lock, LockReply, ReleaseReply, Resign, \
    Unlock
from keel.core.api.node import SESSION_WINDOW, Batch, BatchReply, Call, ChangeMembership, CoreStatus, CoreStatusReply, MembershipReply
from keel.core.api.system import CommitMap, CommitMapReply, CreateBucket, RegisterMember
from keel.core.api.watches import Watch, WatchReply

__all__ = [
    "MUTATIONS",
    "SESSION_WINDOW",
    "Batch",
    "BatchReply",
    "Call",
    "Campaign",
    "CampaignReply",
    "ChangeMembership",
    "Compact",
    "CompactReply",
    "Compare",
    "CreateBucket",
    "CommitMap",
    "CommitMapReply",
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
    "RegisterMember",
    "ReleaseReply",
    "Resign",
    "Txn",
    "TxnReply",
    "Unlock",
    "Watch",
    "WatchReply",
]

# Requests that go through the log (and so need a session sequence number).
MUTATIONS = (Put, Delete, Txn, Compact, LeaseGrant, LeaseRevoke, Lock, Unlock, Campaign, Resign, RegisterMember,
             CreateBucket, CommitMap)

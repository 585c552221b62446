"""The core's state machine: the keyspace, leases and sessions, changed only by committed commands.

Theory of operation. Each COMMAND entry of the log holds one encoded
`Command`: a client's mutating request (`keel.core.api.MUTATIONS`) with its
session stamp, or an internal one (`LeaseExpire`, proposed by the leader).
`apply` decodes it, asks the session table whether this (client, seq) was
answered before (then returns that answer, changing nothing), runs it, and
remembers the answer. An answer is a reply message, or an `ErrorReply` for
a request that broke a rule: errors are answers too, the same on every
node, so a retried bad request gets the same error.

Everything here is deterministic: the only time is the leader's clock
stamped on each command (`Command.at`), which the session table uses to
expire idle sessions; lease deadlines live outside, in the leader's
`LeaseClock`. `digest` chains every applied index and command, so two
machines with equal digests at one index applied the same history.

The event history for watches keeps the last `history_limit` events:
older ones are compacted away as commands are applied (etcd compacts only
when told, but keeps its history on disk; this one lives in memory and in
every snapshot). A watcher that falls further behind gets `Compacted`.

Locks and elections are keys: a lock's waiters are the keys
`keel/lock/<name>/<lease>`, held by the one with the lowest create
revision, whose create revision is the fencing token; an election's
candidates are `keel/election/<name>/<lease>`, led the same way. The keys
carry their lease, so a holder that stops keeping its lease alive loses
the lock when the lease expires.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs

from keel import wire
from keel.consensus import Entry, EntryKind
from keel.core.api import (
    Call, Campaign, CampaignReply, Compact, CompactReply, Delete, DeleteReply, KeyValue, Leader, LeaderReply,
    LeaseGrant, LeaseGrantReply, LeaseRevoke, LeaseRevokeReply, Lock, LockReply, Put, PutReply, Range, RangeReply,
    ReleaseReply, Resign, SESSION_WINDOW, Txn, TxnReply, Unlock,
)
from keel.core.api.system import (
    BUCKET_PREFIX, MAP_KEY, MAX_MEMBER_INFO, RESERVED_PREFIX, CommitMap, CommitMapReply, CreateBucket,
    RegisterMember, member_key, reserved,
)
from keel.core.leases import LeaseTable
from keel.core.sessions import SessionTable
from keel.core.snapshot import capture, decode_snapshot, encode_snapshot
from keel.core.store import KeyStore, Writes
from keel.core.txn import check_ops, holds
from keel.data.bucket import BucketSpec
from keel.data.partition_map import PartitionMap
from keel.errors import KeelError, LeaseExpired, ReservedKey, WireError
from keel.transport.envelope import ErrorReply, error_reply
from keel.wire import AnyMessage, message

__all__ = ["ELECTION_PREFIX", "LOCK_PREFIX", "Command", "CoreMachine", "LeaseExpire", "MAX_NAME"]

HISTORY_LIMIT = 100_000  # events kept for watches; older ones are compacted away, the same on every node
REPLY_BYTES = 4 * 2**20  # bytes of keys and values one range or watch reply carries; far below max_frame
KV_OVERHEAD = 48  # bytes a key-value costs on the wire beside its key and value (revisions, version, lease)
LOCK_PREFIX = b"keel/lock/"
ELECTION_PREFIX = b"keel/election/"
MAX_NAME = 256  # bytes in a lock or election name


@message("core.command")
@attrs.frozen
class Command:
    """What a COMMAND entry holds."""

    client: str  # "" for the leader's own commands
    seq: int
    acked: int
    at: float  # the proposing leader's clock, seconds; log time for session expiry
    op: AnyMessage

    @classmethod
    def of(cls, call: Call, at: float) -> Command:
        return cls(call.client, call.seq, call.acked, at, call.op)


@message("core.lease_expire")
@attrs.frozen
class LeaseExpire:
    """The leader saw lease `id` (the one granted at index `granted`) run out: delete it and its keys.

    `granted` tells that lease from a later one of the same id (a client may
    choose ids): a late or retried expiry must not end its successor. 0
    means whichever lease has the id.
    """

    id: int
    granted: int = 0


class CoreMachine:
    """Keyspace, leases and sessions; a `keel.consensus.Machine`."""

    def __init__(self, *, history_limit: int = HISTORY_LIMIT, session_window: int = SESSION_WINDOW) -> None:
        self.history_limit = history_limit
        self.index = 0
        self.digest = b""
        self.store = KeyStore()
        self.leases = LeaseTable()
        self.sessions = SessionTable(window=session_window)

    # --- applying ----------------------------------------------------------------------

    def apply(self, entry: Entry) -> Any:
        """Apply one committed entry; the answer to its command (None for other kinds)."""
        self.index = entry.index
        if entry.kind is not EntryKind.COMMAND:
            return None
        self.digest = hashlib.sha256(self.digest + entry.index.to_bytes(8, "big") + entry.data).digest()
        try:
            command = wire.decode(entry.data)
        except WireError as exc:  # written by a leader of another version, or a bug: every node answers alike
            return ErrorReply("error", f"index {entry.index}: command does not decode: {exc}")
        if not isinstance(command, Command):
            return ErrorReply("error", f"index {entry.index}: {type(command).__name__} is not a command")
        # The history is bounded by the commands themselves, so every node trims it at the same index.
        self.store.trim(self.history_limit)
        if not command.client:
            return self._run(command.op)
        try:
            seen, answer = self.sessions.lookup(command.client, command.seq, command.acked, command.at)
        except KeelError as exc:  # SessionExpired, or a seq beyond the window: refused, not applied
            return error_reply(exc)
        if seen:
            return answer
        answer = self._run(command.op)
        self.sessions.record(command.client, command.seq, answer)
        return answer

    def _run(self, op: Any) -> Any:
        try:
            return self._execute(op)
        except KeelError as exc:
            return error_reply(exc)

    def _execute(self, op: Any) -> Any:
        if isinstance(op, (Put, Delete)):
            writes = self.store.writes()
            reply = self._write(writes, op)
            return attrs.evolve(reply, revision=writes.close())
        if isinstance(op, Txn):
            return self._txn(op)
        if isinstance(op, Compact):
            self.store.compact(op.revision)
            return CompactReply(self.store.revision)
        if isinstance(op, LeaseGrant):
            try:
                lease = self.leases.grant(op.ttl, op.id, granted=self.index)
            except ValueError as exc:
                raise KeelError(f"lease grant: {exc}") from None
            return LeaseGrantReply(lease.id, lease.ttl, self.store.revision)
        if isinstance(op, LeaseExpire) and op.granted and op.id in self.leases \
                and self.leases.leases[op.id].granted != op.granted:
            raise LeaseExpired(f"lease {op.id} granted at index {op.granted} is gone; the one of that id now was "
                               f"granted at {self.leases.leases[op.id].granted}")
        if isinstance(op, (LeaseRevoke, LeaseExpire)):
            return LeaseRevokeReply(self._end_lease(op.id))
        if isinstance(op, (Lock, Campaign)):
            return self._queue(op)
        if isinstance(op, (Unlock, Resign)):
            queue = LOCK_PREFIX if isinstance(op, Unlock) else ELECTION_PREFIX
            if not op.key.startswith(queue):
                raise KeelError(f"{type(op).__name__.lower()}: key {op.key!r} is not under {queue.decode()}")
            writes = self.store.writes()
            for kv in writes.delete(op.key):
                self.leases.attach(kv.key, kv.lease, 0)
            return ReleaseReply(writes.close())
        if isinstance(op, RegisterMember):
            return self._register(op)
        if isinstance(op, CreateBucket):
            return self._create_bucket(op)
        if isinstance(op, CommitMap):
            return self._commit_map(op)
        raise KeelError(f"{type(op).__name__} is not a request the core applies")

    def _register(self, op: RegisterMember) -> PutReply:
        if not isinstance(op.node, str) or not 0 < len(op.node) <= MAX_NAME or "/" in op.node:
            raise KeelError(f"register member: node id {op.node!r}: 1 to {MAX_NAME} characters without '/'")
        if len(op.info) > MAX_MEMBER_INFO:
            raise KeelError(f"register member {op.node}: {len(op.info)} bytes of info exceed {MAX_MEMBER_INFO}")
        if op.lease not in self.leases:
            raise LeaseExpired(f"register member {op.node}: lease {op.lease} does not exist")
        writes = self.store.writes()
        key = member_key(op.node)
        before = writes.put(key, op.info, op.lease)
        self.leases.attach(key, before.lease if before else 0, op.lease)
        return PutReply(writes.close(), None)

    def _commit_map(self, op: CommitMap) -> CommitMapReply:
        new = PartitionMap.from_bytes(op.map)  # MapError: a malformed map is never stored
        held = self.store.get(MAP_KEY)
        if (held.mod_revision if held else 0) != op.expected:
            return CommitMapReply(self.store.revision, False, held.mod_revision if held else 0)
        if held is not None:
            old = PartitionMap.from_bytes(held.value)
            if new.epoch <= old.epoch:
                raise KeelError(f"commit map: epoch {new.epoch} is not above the committed epoch {old.epoch}")
        writes = self.store.writes()
        writes.put(MAP_KEY, op.map, 0)
        revision = writes.close()
        return CommitMapReply(revision, True, revision)

    def _create_bucket(self, op: CreateBucket) -> PutReply:
        bucket = BucketSpec.from_bytes(op.bucket)
        key = BUCKET_PREFIX + bucket.name.encode()
        held = self.store.get(key)
        if held is not None:
            if held.value == op.bucket:
                return PutReply(self.store.revision, None)
            raise KeelError(f"bucket {bucket.name} exists with other settings (keel bucket show {bucket.name})")
        writes = self.store.writes()
        writes.put(key, op.bucket, 0)
        return PutReply(writes.close(), None)

    def _write(self, writes: Writes, op: Put | Delete) -> PutReply | DeleteReply:
        _check_writable(op)
        if isinstance(op, Put):
            if op.lease and op.lease not in self.leases:
                raise LeaseExpired(f"put {op.key!r}: lease {op.lease} does not exist (expired or revoked)")
            before = writes.put(op.key, op.value, op.lease)
            self.leases.attach(op.key, before.lease if before else 0, op.lease)
            return PutReply(writes.revision, before if op.prev_kv else None)
        gone = writes.delete(op.key, prefix=op.prefix)
        for kv in gone:
            self.leases.attach(kv.key, kv.lease, 0)
        return DeleteReply(writes.revision, len(gone), tuple(gone) if op.prev_kv else ())

    def _txn(self, op: Txn) -> TxnReply:
        # All compares are evaluated (a list, no short-circuit): a malformed one is refused whatever the keys hold.
        succeeded = all([holds(c, self.store.get(c.key)) for c in op.compare])
        ops = op.success if succeeded else op.failure
        check_ops(ops, lambda lease: lease in self.leases)
        writes = self.store.writes()
        replies: list[Any] = []
        for inner in ops:
            if isinstance(inner, Range):
                # etcd: a read sees the txn's writes before it, so it is served at the revision they make.
                served = writes.revision if writes.changed else self.store.revision
                replies.append(attrs.evolve(self.read(inner), revision=served))
            else:
                replies.append(self._write(writes, inner))
        revision = writes.close()
        return TxnReply(revision, succeeded, tuple(
            attrs.evolve(r, revision=revision) if isinstance(r, (PutReply, DeleteReply)) else r for r in replies))

    def _end_lease(self, lease_id: int) -> int:
        lease = self.leases.remove(lease_id)
        if lease is None:
            raise LeaseExpired(f"lease {lease_id} does not exist (expired or revoked)")
        writes = self.store.writes()
        for key in sorted(lease.keys):
            writes.delete(key)
        return writes.close()

    def _queue(self, op: Lock | Campaign) -> LockReply | CampaignReply:
        if not 0 < len(op.name) <= MAX_NAME or b"/" in op.name:
            raise KeelError(f"name {op.name!r}: 1 to {MAX_NAME} bytes without '/'")
        if op.lease not in self.leases:
            raise LeaseExpired(f"{type(op).__name__.lower()} {op.name!r}: lease {op.lease} does not exist")
        prefix = (LOCK_PREFIX if isinstance(op, Lock) else ELECTION_PREFIX) + op.name + b"/"
        key = prefix + f"{op.lease:016x}".encode()
        kv = self.store.get(key)
        if kv is None:  # a retry keeps its place in the queue; a first request joins it
            writes = self.store.writes()
            writes.put(key, op.value if isinstance(op, Campaign) else b"", op.lease)
            self.leases.attach(key, 0, op.lease)
            writes.close()
            kv = self.store.get(key)
        assert kv is not None
        first = self.first(prefix)
        ahead = first is not None and first.key == key
        if isinstance(op, Lock):
            return LockReply(key, kv.create_revision, ahead)
        return CampaignReply(key, kv.create_revision, ahead)

    # --- reading -----------------------------------------------------------------------------

    def read(self, op: Any) -> Any:
        """Answer a read (`Range`, `Leader`) from the state as it is now."""
        if isinstance(op, Range):
            kvs, count = self.store.range(op.key, prefix=op.prefix, limit=op.limit)
            if op.keys_only:
                kvs = [attrs.evolve(kv, value=b"") for kv in kvs]
            kvs = _within(kvs)  # the rest waits for the next range, from the last key on
            return RangeReply(self.store.revision, tuple(kvs), count, len(kvs) < count)
        if isinstance(op, Leader):
            return LeaderReply(self.first(ELECTION_PREFIX + op.name + b"/"), self.store.revision)
        raise KeelError(f"{type(op).__name__} is not a read")

    def first(self, prefix: bytes) -> KeyValue | None:
        """The key under `prefix` with the lowest create revision: a lock's holder, an election's leader."""
        kvs, _ = self.store.range(prefix, prefix=True)
        return min(kvs, key=lambda kv: kv.create_revision, default=None)

    def holds_first(self, key: bytes) -> bool | None:
        """Whether the lock or candidacy `key` is first in its queue; None if the key is gone."""
        if self.store.get(key) is None:
            return None
        first = self.first(key.rsplit(b"/", 1)[0] + b"/")
        return first is not None and first.key == key

    def events(self, key: bytes, *, prefix: bool, start: int, limit_bytes: int | None = None) -> list[Any]:
        """Watch events from `start` (raises `Compacted`); at most about `limit_bytes`, in whole revisions."""
        found = self.store.events(key, prefix=prefix, start=start)
        if limit_bytes is None:
            return list(found)
        events: list[Any] = []
        size = 0
        for event in found:
            if size >= limit_bytes and event.kv.mod_revision != events[-1].kv.mod_revision:
                break  # a revision is never split: its events are one transaction
            events.append(event)
            size += len(event.kv.key) + len(event.kv.value) + KV_OVERHEAD
        return events

    # --- snapshots -----------------------------------------------------------------------

    def snapshot(self) -> bytes:
        return encode_snapshot(capture(self))

    def capture(self) -> Any:
        """The state as immutable pieces, cheap to take; `encode` turns it into a snapshot in any thread."""
        return capture(self)

    @staticmethod
    def encode(state: Any) -> bytes:
        return encode_snapshot(state)

    def restore(self, blob: bytes) -> None:
        """Replace the whole state with a snapshot.

        Raises:
            WireError: the blob is not a snapshot this code can read.
        """
        decode_snapshot(self, blob)


def _check_writable(op: Put | Delete) -> None:
    if reserved(op.key, prefix=isinstance(op, Delete) and op.prefix):
        what = "delete the prefix" if isinstance(op, Delete) and op.prefix else type(op).__name__.lower()
        raise ReservedKey(f"{what} {op.key!r}: keys under {RESERVED_PREFIX.decode()} are keel's own; "
                          "clients may read and watch them, not write them")


def _within(kvs: list[KeyValue]) -> list[KeyValue]:
    """The first keys of `kvs` that fit in one reply (at least one, however large)."""
    size = 0
    for i, kv in enumerate(kvs):
        size += len(kv.key) + len(kv.value) + KV_OVERHEAD
        if size > REPLY_BYTES and i > 0:
            return kvs[:i]
    return kvs

"""DataServer: one data node's service logic, sans-I/O, for the Trio runtime and the simulator alike.

Theory of operation. The driver feeds the server the cluster's partition map
and bucket table (followed from the core by watch), the time (`tick`),
client calls (`request(ref, call)`) and peer messages (`receive`); the
server answers through `poll()`: records to persist, then messages to
peers and replies to clients, which leave only once everything persisted
so far is durable. So an acknowledgement, to a client or a peer, always
follows the durability of what it acknowledges.

- **Coordinating.** A `DataCall` arrives at any node. One that is not a
  replica of the key's partition hands it to a replica (`Coordinate`) and
  relays the answer. A replica coordinates itself:
  - a write is checked by the bucket's store, stamped by the node's hybrid
    clock, applied to the local record (`Store.apply`) and merged there; the
    record it made goes to the partition's other writers as `ReplicaMerge`.
    The call succeeds once `w` owners, this one included, hold it
    durably (and, while the partition moves, `w` of the replicas it moves
    to); when the deadline comes first it fails with `TooFewReplicas`
    naming how many did (those keep it; repair spreads it).
  - a read asks `r - 1` other owners of the partition (`ReplicaRead`), the
    rest too if those have not answered within `HEDGE_S`, and answers from
    the merge of the first `r` records, itself included; every replica that
    answered with less than the merge is sent the merge (read repair).
- **Replicating.** A `ReplicaMerge` is merged into the local record and
  acknowledged once durable. A node that its own map does not name as a
  writer of the partition refuses (`ReplicaRefused`, with its epoch), so a
  coordinator with an old map does not count it.
- **Clocks.** Every peer message carries the sender's hybrid clock; the
  receiver moves past it, so a write stamped after it orders after every
  write the node has heard of; a clock more than 5 s ahead of the
  receiver's own is not followed (reported as an event), though its
  message is still taken. The clock's high water goes into every
  persisted batch and starts the next incarnation (`clock_floor`).

Records are canonical CBOR bytes here (`encode_record`); the store sees
them decoded. A record from a peer that does not decode or that the store
refuses (`check_record`) is dropped and reported as a `BadRecord` event; the
node goes on.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs

from keel import wire
from keel.config import build
from keel.data.api import (
    Coordinate, Coordinated, DataCall, DataReply, ReplicaAck, ReplicaMerge, ReplicaRead, ReplicaRecord,
    ReplicaRefused, SyncOpen, SyncTurn,
)
from keel.data.bucket import BucketSpec
from keel.data.hlc import ClockAhead, HybridClock, Timestamp
from keel.data.merkle import SLOT_BITS, MerkleTree, record_digest, slot_of
from keel.data.partition_map import PartitionMap, partition_of
from keel.data.store import ApplyContext, OpKind, Operation, Store, decode_record, encode_record
from keel.data.tree_sync import SyncBegin, SyncStep, TreeSync
from keel.errors import KeelError, PluginError, TooFewReplicas, Unavailable, UnknownBucket, WireError
from keel.transport.envelope import ErrorReply, error_reply

__all__ = ["MAX_TIMEOUT_S", "BadRecord", "DataOutput", "DataServer", "MemoryRecords", "RecordStore", "Stored",
           "StoredBatch", "WriteMade"]

MAX_TIMEOUT_S = 60.0  # the longest a call may ask its coordinator to wait for replicas
MAX_KEY = 4096  # bytes in a data key
SYNC_EVERY_S = 0.25  # seconds between the anti-entropy exchanges a node starts (jittered); level ones cost 2 messages
SYNC_TIMEOUT_S = 2.0  # seconds an exchange may stay open before it is dropped (a lost message ends it)
STREAM_PAGE = 256  # records of a slot range sent per tick
ALL_SLOTS = (0, 1 << SLOT_BITS)  # a whole partition, as a slot range
HEDGE_S = 0.05  # seconds a read waits for the replicas it asked before it asks the others too
CATCH_UP_EVERY_S = 0.5  # seconds between a joiner's exchanges with the owners of the partitions it joins
REPORT_EVERY_S = 1.0  # seconds between a ready joiner's reports, until a map makes it an owner


class RecordStore(Protocol):
    """Where a node's records live: written at once (visible to reads), durable once persisted."""

    def get(self, bucket: str, partition: int, key: bytes) -> bytes | None: ...

    def put(self, bucket: str, partition: int, key: bytes, record: bytes | None) -> None: ...

    def drop(self, bucket: str, partition: int) -> None:
        """Forget every record of the partition (at once for reads; durably with the batch that says so)."""

    def held_partitions(self) -> set[tuple[str, int]]:
        """Every (bucket, partition) the node holds records of."""

    def tree(self, bucket: str, partition: int) -> MerkleTree:
        """The hash tree of what the partition holds now."""

    def entries(self, bucket: str, partition: int, lo: int, hi: int) -> Sequence[tuple[bytes, bytes]]:
        """`(key, digest)` of the partition's records with slots in `[lo, hi)`, in slot order."""

    def scan(self, bucket: str, partition: int, slots: tuple[int, int], after: bytes | None,
             limit: int) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
        """Up to `limit` `(key, record)` with slots in `slots`, in slot order after key `after`; and where to resume."""


@attrs.frozen
class Stored:
    """One record to persist (None: drop the key)."""

    bucket: str
    partition: int
    key: bytes
    record: bytes | None


@attrs.frozen
class StoredBatch:
    """What one poll persists: records and the clock's high water, in one transaction."""

    records: tuple[Stored, ...]
    high_water: int
    dropped: tuple[tuple[str, int], ...] = ()  # (bucket, partition) whose records go first: no longer this node's


class MemoryRecords:
    """Records in dicts: the simulator's and the tests' `RecordStore`, rebuilt from persisted batches."""

    def __init__(self, batches: tuple[Any, ...] = ()) -> None:
        self.parts: dict[tuple[str, int], dict[bytes, bytes]] = {}
        self.high_water = 0
        for batch in batches:
            if isinstance(batch, StoredBatch):
                for where in batch.dropped:
                    self.drop(*where)
                for item in batch.records:
                    self.put(item.bucket, item.partition, item.key, item.record)
                self.high_water = max(self.high_water, batch.high_water)

    @property
    def held(self) -> dict[tuple[str, int, bytes], bytes]:
        """Every record by (bucket, partition, key)."""
        return {(b, p, k): v for (b, p), part in self.parts.items() for k, v in part.items()}

    def get(self, bucket: str, partition: int, key: bytes) -> bytes | None:
        return self.parts.get((bucket, partition), {}).get(key)

    def put(self, bucket: str, partition: int, key: bytes, record: bytes | None) -> None:
        if record is None:
            self.parts.get((bucket, partition), {}).pop(key, None)
        else:
            self.parts.setdefault((bucket, partition), {})[key] = record

    def drop(self, bucket: str, partition: int) -> None:
        self.parts.pop((bucket, partition), None)

    def held_partitions(self) -> set[tuple[str, int]]:
        return {where for where, part in self.parts.items() if part}

    def tree(self, bucket: str, partition: int) -> MerkleTree:
        part = self.parts.get((bucket, partition), {})
        return MerkleTree.build((k, record_digest(v)) for k, v in part.items())

    def entries(self, bucket: str, partition: int, lo: int, hi: int) -> list[tuple[bytes, bytes]]:
        return [(k, record_digest(v)) for k, v in self._slotted(bucket, partition, lo, hi)]

    def scan(self, bucket: str, partition: int, slots: tuple[int, int], after: bytes | None,
             limit: int) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
        items = self._slotted(bucket, partition, *slots)
        if after is not None:
            mark = (slot_of(after), after)
            items = [(k, v) for k, v in items if (slot_of(k), k) > mark]
        page = items[:limit]
        return page, (page[-1][0] if len(items) > limit else None)

    def _slotted(self, bucket: str, partition: int, lo: int, hi: int) -> list[tuple[bytes, bytes]]:
        part = self.parts.get((bucket, partition), {})
        return sorted(((k, v) for k, v in part.items() if lo <= slot_of(k) < hi), key=lambda kv: (slot_of(kv[0]), kv[0]))


@attrs.frozen
class WriteMade:
    """Event (when `report_writes`): this node coordinated a write of `args` to `key`, which made `record`."""

    node: str
    bucket: str
    key: bytes
    args: bytes
    record: bytes


@attrs.frozen
class BadRecord:
    """Event: a record from a peer was dropped (it did not decode, or its store refused it)."""

    src: str
    bucket: str
    key: bytes
    reason: str


@attrs.frozen
class DataOutput:
    """What the driver must do after a poll: persist, then (once durable) send and reply."""

    persist: tuple[StoredBatch, ...] = ()
    # (peer, message) that need not wait for this poll's persist (a write's record going to the other
    # replicas: it acknowledges nothing, so it leaves while the coordinator's own commit runs)
    send_early: tuple[tuple[str, Any], ...] = ()
    send: tuple[tuple[str, Any], ...] = ()  # (peer, message)
    replies: tuple[tuple[Any, Any], ...] = ()  # (ref, DataReply or ErrorReply)
    events: tuple[Any, ...] = ()
    ready: tuple[tuple[int, int], ...] = ()  # (partition, epoch) this node joins and now holds: tell the core


@attrs.define
class _Call:
    """A call this node coordinates (or handed to a replica), waiting for answers."""

    ref: Any
    call: DataCall
    bucket: BucketSpec
    store: Store | None
    partition: int
    op: Operation
    need: int
    deadline: float
    asked: tuple[str, ...] = ()
    counted: frozenset[str] = frozenset()  # whose acknowledgements count toward w: the owners (not joiners)
    counted_after: frozenset[str] = frozenset()  # while moving: the replica set after the move, w of it too
    spare: tuple[str, ...] = ()  # reads: replicas not asked yet, asked if the first ones are slow
    hedge_at: float = 0.0
    acks: set[str] = attrs.Factory(set)
    records: dict[str, bytes] = attrs.Factory(dict)  # reads: replica -> its record (b"" for none)
    forwarded: bool = False


class DataServer:
    """The data service of one node; see the module doc."""

    def __init__(self, node_id: str, *, stores: Mapping[str, Any], records: RecordStore, rng: random.Random,
                 clock_floor: int = 0, sync_every: float = SYNC_EVERY_S,
                 trees: Mapping[tuple[str, int], MerkleTree] | None = None) -> None:
        """`stores`: the installed store plugins by name; `clock_floor`: the high water a previous incarnation
        persisted; `sync_every`: seconds between anti-entropy exchanges this node starts (0: none); `trees`:
        hash trees already built (from `records`) by partition, so none is built on the event loop."""
        self.node_id = node_id
        self.plugins = dict(stores)
        self.records = records
        self.rng = rng
        self.clock = HybridClock(node_id, floor=clock_floor)
        self.map: PartitionMap | None = None
        self.buckets: dict[str, BucketSpec] = {}
        self.buckets_known = False  # until the bucket table is first read, an unknown bucket may just be unread
        self.report_writes = False  # WriteMade events, for the conformance checks
        self._stores: dict[str, tuple[BucketSpec, Store | KeelError]] = {}
        self.now = 0.0
        self.wall_us = 0
        self._ids = itertools.count(1)
        self._calls: dict[int, _Call] = {}
        self._staged: list[Stored] = []
        self._send: list[tuple[str, Any]] = []
        self._send_early: list[tuple[str, Any]] = []
        self._replies: list[tuple[Any, Any]] = []
        self._events: list[Any] = []
        self.sync_every = sync_every
        self._next_sync: float | None = None
        self._trees: dict[tuple[str, int], MerkleTree] = dict(trees or {})
        self._syncs: dict[tuple[str, int, bool], _Sync] = {}  # (peer, exchange id, we began it) -> our side
        self._streams: deque[_Stream] = deque()  # slot ranges to send a peer whole, a page per tick
        self.synced = 0  # exchanges this node finished, either side
        self._sweep = rng.randrange(1 << 16)  # where the round robin of exchanges starts
        self._dropped: list[tuple[str, int]] = []
        # (joined partition, epoch) -> the (bucket, owner) pairs an exchange found level with this node
        self._in_sync: dict[tuple[int, int], set[tuple[str, str]]] = {}
        self._ready: list[tuple[int, int]] = []
        self._next_catch_up = 0.0
        self._next_report = 0.0

    # --- what the core says -------------------------------------------------------------------

    def set_map(self, pmap: PartitionMap) -> None:
        """Follow a newer partition map (an older one than held is ignored).

        A partition this node was leaving goes (its records dropped) once the
        map shows the handoff done: its joiner owns it. A partition taken
        away without a handoff (this node's lease ran out, say, and the map
        moved on without it) is kept, and its records are streamed to the
        partition's current writers, which merge them: nothing a node held is
        lost because the map forgot it for a while. (Such records stay on
        disk; collecting them is left for later.)
        """
        if self.map is not None and pmap.epoch <= self.map.epoch:
            return
        old, self.map = self.map, pmap
        if old is not None and old.partitions == pmap.partitions:
            for partition, (was, now) in enumerate(zip(old.placements, pmap.placements)):
                if (self.node_id in was.leaving and self.node_id not in now.writers()
                        and any(node in now.owners for node in was.joining)):
                    for bucket in sorted(self.buckets):
                        self.records.drop(bucket, partition)
                        self._trees.pop((bucket, partition), None)
                        self._dropped.append((bucket, partition))
        mine = set(pmap.partitions_of(self.node_id))
        queued = {(st.peer, st.bucket, st.partition, st.slots) for st in self._streams}
        for bucket, partition in sorted(self.records.held_partitions()):
            if partition not in mine and 0 <= partition < pmap.partitions:
                for node in pmap.replicas_for(partition):
                    if (node, bucket, partition, ALL_SLOTS) not in queued:
                        self._streams.append(_Stream(node, bucket, partition, ALL_SLOTS))
        self._in_sync = {k: v for k, v in self._in_sync.items() if k[1] == pmap.epoch}

    def set_buckets(self, buckets: Mapping[str, BucketSpec]) -> None:
        """Follow the bucket table as the core holds it now."""
        self.buckets = dict(buckets)
        self.buckets_known = True

    @property
    def epoch(self) -> int:
        return self.map.epoch if self.map is not None else 0

    # --- inputs -------------------------------------------------------------------------------

    def tick(self, now: float, wall: float | None = None) -> None:
        """Time is `now` (seconds, for deadlines); `wall` is the Unix time for the hybrid clock (default `now`)."""
        self.now = now
        self.wall_us = int((now if wall is None else wall) * 1_000_000)
        for cid in [cid for cid, c in self._calls.items() if c.deadline <= now]:
            self._expire(self._calls.pop(cid))
        for cid, c in self._calls.items():
            if c.spare and c.hedge_at <= now:
                spare, c.spare = c.spare, ()
                for node in spare:
                    self._send.append((node, ReplicaRead(cid, c.bucket.name, c.partition, c.call.key, self._clock(),
                                                         self.epoch)))
        for key in [key for key, sync in self._syncs.items() if sync.deadline <= now]:
            del self._syncs[key]
        if self.sync_every > 0:
            if self._next_sync is None:
                self._next_sync = now + self.rng.uniform(0.0, self.sync_every)
            elif now >= self._next_sync:
                self._next_sync = now + self.sync_every * self.rng.uniform(0.5, 1.5)
                self._start_sync()
        self._stream_page()
        self._catch_up()

    def request(self, ref: Any, body: Any) -> None:
        """A client's request; its answer leaves in a later poll as `(ref, reply)`."""
        if not isinstance(body, DataCall):
            self._replies.append((ref, error_reply(KeelError(
                f"request {type(body).__name__}: a data node serves DataCall"))))
            return
        try:
            self._coordinate(ref, body)
        except KeelError as exc:
            self._replies.append((ref, error_reply(exc)))

    def receive(self, src: str, message: Any) -> None:
        """A message from peer `src`."""
        clock = getattr(message, "clock", None)
        if clock is not None:
            try:
                self.clock.observe(Timestamp(*clock), self.wall_us)
            except ClockAhead as exc:
                # This node's clock does not follow one that far ahead; the message still counts,
                # or replicas could never converge while one clock is wrong.
                self._events.append(BadRecord(src, "", b"", str(exc)))
        if isinstance(message, ReplicaMerge):
            self._merge_from(src, message)
        elif isinstance(message, ReplicaRead):
            self._read_for(src, message)
        elif isinstance(message, ReplicaAck):
            call = self._calls.get(message.id)
            if call is not None and src in call.asked:
                call.acks.add(src)
                self._settle(message.id)
        elif isinstance(message, ReplicaRecord):
            call = self._calls.get(message.id)
            if call is not None and src in call.asked and call.store is not None:
                if self._valid(src, call.bucket, call.store, call.call.key, message.record):
                    call.records[src] = message.record
                    self._settle(message.id)
        elif isinstance(message, ReplicaRefused):
            self._syncs.pop((src, message.id, True), None)
            self._events.append(message)
        elif isinstance(message, SyncOpen):
            self._sync_opened(src, message)
        elif isinstance(message, SyncTurn):
            self._sync_turn(src, message)
        elif isinstance(message, Coordinate):
            try:
                self._coordinate((src, message.id), message.call, handed=True)
            except KeelError as exc:  # goes back to the node that handed it over, as its answer
                self._replies.append(((_HANDED, (src, message.id)), error_reply(exc)))
        elif isinstance(message, Coordinated):
            call = self._calls.pop(message.id, None)
            if call is not None and call.forwarded and call.asked == (src,):
                self._replies.append((call.ref, message.reply))

    def poll(self) -> DataOutput:
        """Return, and forget, everything asked for since the last poll."""
        persist = ()
        if self._staged or self._dropped:
            persist = (StoredBatch(tuple(self._staged), self.clock.high_water, tuple(self._dropped)),)
            self._staged, self._dropped = [], []
        replies = []
        for ref, reply in self._replies:
            if isinstance(ref, tuple) and len(ref) == 2 and ref[0] == _HANDED:
                self._send.append((ref[1][0], Coordinated(ref[1][1], reply)))
            else:
                replies.append((ref, reply))
        out = DataOutput(persist=persist, send_early=tuple(self._send_early), send=tuple(self._send),
                         replies=tuple(replies), events=tuple(self._events), ready=tuple(self._ready))
        self._send, self._send_early, self._replies, self._events, self._ready = [], [], [], [], []
        return out

    # --- coordinating ----------------------------------------------------------------------------

    def _coordinate(self, ref: Any, call: DataCall, *, handed: bool = False) -> None:
        if handed:
            ref = (_HANDED, ref)
        bucket, store = self._store(call.bucket)
        if not isinstance(call.key, bytes) or not 0 < len(call.key) <= MAX_KEY:
            raise KeelError(f"key: 1 to {MAX_KEY} bytes, not {len(call.key) if isinstance(call.key, bytes) else call.key!r}")
        try:
            args = wire.decode_plain(call.args, "args")
        except WireError as exc:
            raise KeelError(f"{call.op}: {exc}") from None
        if not isinstance(args, list):
            raise KeelError(f"{call.op}: args must be a list")
        op = Operation(call.op, tuple(args))
        store.check(op)
        n, r, w = (getattr(call, x) or getattr(bucket, x) for x in ("n", "r", "w"))
        if not 0 < call.timeout <= MAX_TIMEOUT_S:
            raise KeelError(f"timeout {call.timeout:g} s: above 0 and at most {MAX_TIMEOUT_S:g} s")
        if self.map is None:
            raise Unavailable(f"data node {self.node_id} has no partition map yet; retry")
        kind = store.operations[op.name]
        name, value = ("w", w) if kind is OpKind.WRITE else ("r", r)  # a read's w (a write's r) is not used
        if not 0 < value <= n:
            raise KeelError(f"{name}={value}: from 1 to n={n}")
        partition = partition_of(call.key, self.map.partitions)
        writers = self._replicas(partition, n, kind)
        deadline = self.now + call.timeout
        cid = next(self._ids)
        if self.node_id not in writers:
            if handed or not writers:
                raise Unavailable(f"partition {partition} has no replica this node can reach (map epoch {self.epoch})")
            target = writers[self.rng.randrange(len(writers))]
            self._calls[cid] = _Call(ref, call, bucket, None, partition, op, 1, deadline, asked=(target,),
                                     forwarded=True)
            self._send.append((target, Coordinate(cid, call, self.epoch)))
            return
        need = w if kind is OpKind.WRITE else r
        # Only owners' acknowledgements count toward w: reads ask owners, so a write counted on a joiner
        # could be missed by a quorum read while the partition moves.
        counted = frozenset(self._replicas(partition, n, OpKind.READ))
        if need > len(counted):
            raise TooFewReplicas(f"{op.name} {call.key!r}: {'w' if kind is OpKind.WRITE else 'r'}={need} but "
                                 f"partition {partition} has {len(counted)} owner(s) in map epoch {self.epoch}")
        # While the partition moves, a write also needs w acknowledgements among the replica set it moves
        # to (owners that stay, and joiners): a read under the next map asks those, and must meet it.
        target = self.map.placements[partition].target() if n >= self.map.replicas else ()
        after = frozenset(target) if target and frozenset(target) != counted else frozenset()
        others = tuple(node for node in writers if node != self.node_id)
        pending = _Call(ref, call, bucket, store, partition, op, need, deadline, asked=others, counted=counted,
                        counted_after=after)
        self._calls[cid] = pending
        clock = self._clock()
        if kind is OpKind.WRITE:
            stamp = self.clock.now(self.wall_us)
            held = self._held(bucket, partition, call.key)
            here = held[1]
            made = store.apply(here, op, ApplyContext(stamp=stamp, node=self.node_id))
            made_bytes = encode_record(made)
            if self.report_writes:
                self._events.append(WriteMade(self.node_id, bucket.name, call.key, call.args, made_bytes))
            self._keep(bucket, partition, call.key, store, held, made)
            pending.acks.add(self.node_id)
            for node in others:  # the replicas commit while this node does: one fsync of latency, not two
                self._send_early.append((node, ReplicaMerge(cid, bucket.name, partition, call.key, made_bytes,
                                                            _plain(stamp), self.epoch)))
        else:
            held = self.records.get(bucket.name, partition, call.key)
            pending.records[self.node_id] = held or b""
            # Ask as many as the read needs; the rest only if they are slow to answer (a hedge), so a
            # quorum read costs r - 1 round trips of messages, not n - 1.
            first = list(others)
            self.rng.shuffle(first)
            first, pending.spare = first[:max(need - 1, 0)], tuple(first[max(need - 1, 0):])
            pending.hedge_at = self.now + min(HEDGE_S, call.timeout / 2)
            for node in first:
                self._send.append((node, ReplicaRead(cid, bucket.name, partition, call.key, clock, self.epoch)))
        self._settle(cid)

    def _replicas(self, partition: int, n: int, kind: OpKind) -> tuple[str, ...]:
        """The replicas a call on `partition` goes to: all its writers (or readers), or its first `n` owners."""
        assert self.map is not None
        nodes = self.map.replicas_for(partition) if kind is OpKind.WRITE else \
            (self.map.readers_for(partition) or self.map.replicas_for(partition))
        if n >= self.map.replicas:
            return nodes
        # A bucket with fewer replicas than the cluster's keeps its keys on the first n owners
        # (a partition on the move streams every bucket's records to its new owner anyway).
        return (self.map.readers_for(partition) or nodes)[:n]

    def _settle(self, cid: int) -> None:
        call = self._calls.get(cid)
        if call is None or call.forwarded:
            return
        if call.store is None:
            return
        kind = call.store.operations[call.op.name]
        if kind is OpKind.WRITE:
            if len(call.acks & call.counted) >= call.need and (
                    not call.counted_after
                    or len(call.acks & call.counted_after) >= min(call.need, len(call.counted_after))):
                del self._calls[cid]
                self._replies.append((call.ref, DataReply(wire.encode_plain(None), self.epoch,
                                                          len(call.acks & call.counted))))
            return
        if len(call.records) < call.need:
            return
        del self._calls[cid]
        merged = None
        for record in call.records.values():
            if record:
                value = decode_record(record, "record")
                merged = value if merged is None else call.store.merge(merged, value)
        if merged is not None:
            merged_bytes = encode_record(merged)
            for node, record in call.records.items():
                if record == merged_bytes:
                    continue
                if node == self.node_id:
                    held = self._held(call.bucket, call.partition, call.call.key)
                    self._keep(call.bucket, call.partition, call.call.key, call.store, held, merged)
                else:  # read repair: the stale replica gets the merge, no answer wanted
                    self._send.append((node, ReplicaMerge(0, call.bucket.name, call.partition, call.call.key,
                                                          merged_bytes, self._clock(), self.epoch)))
        result = call.store.read(merged, call.op)
        self._replies.append((call.ref, DataReply(wire.encode_plain(result), self.epoch, len(call.records))))

    def _expire(self, call: _Call) -> None:
        if call.forwarded:
            self._replies.append((call.ref, error_reply(TooFewReplicas(
                f"{call.op.name} {call.call.key!r}: replica {call.asked[0]} did not answer within "
                f"{call.call.timeout:g} s"))))
            return
        assert call.store is not None
        kind = call.store.operations[call.op.name]
        got = len(call.acks & call.counted) if kind is OpKind.WRITE else len(call.records)
        total = len(call.counted) if kind is OpKind.WRITE else len(call.asked) + 1
        if kind is OpKind.WRITE:
            what = (f"{got} of {total} replicas acknowledged within {call.call.timeout:g} s, {call.need} needed; "
                    "those that did keep the write and repair spreads it")
        else:
            what = f"{got} of {total} replicas answered within {call.call.timeout:g} s, {call.need} needed"
        self._replies.append((call.ref, error_reply(TooFewReplicas(
            f"{call.op.name} {call.call.key!r} in bucket {call.bucket.name}: {what}"))))

    # --- replicating -----------------------------------------------------------------------------

    def _merge_from(self, src: str, msg: ReplicaMerge) -> None:
        refused = self._refusal(msg.bucket, msg.partition)
        if refused:
            if msg.id:
                self._send.append((src, ReplicaRefused(msg.id, self.epoch, refused)))
            return
        bucket, store = self._stores[msg.bucket]
        assert not isinstance(store, KeelError)
        if not self._valid(src, bucket, store, msg.key, msg.record):
            return
        held = self._held(bucket, msg.partition, msg.key)
        self._keep(bucket, msg.partition, msg.key, store, held, decode_record(msg.record, "record"))
        if msg.id:
            self._send.append((src, ReplicaAck(msg.id, self._clock())))

    def _read_for(self, src: str, msg: ReplicaRead) -> None:
        refused = self._refusal(msg.bucket, msg.partition)
        if refused:
            self._send.append((src, ReplicaRefused(msg.id, self.epoch, refused)))
            return
        held = self.records.get(msg.bucket, msg.partition, msg.key)
        self._send.append((src, ReplicaRecord(msg.id, held or b"", self._clock())))

    def _refusal(self, bucket: str, partition: int) -> str:
        """Why this node will not keep records of `partition` in `bucket` ("" when it will)."""
        if self.map is None:
            return "no partition map yet"
        if not 0 <= partition < self.map.partitions:
            return f"no partition {partition}"
        if self.node_id not in self.map.replicas_for(partition):
            return f"not a replica of partition {partition}"
        try:
            self._store(bucket)
        except KeelError as exc:
            return str(exc)
        return ""

    # --- records -----------------------------------------------------------------------------

    def _held(self, bucket: BucketSpec, partition: int, key: bytes) -> tuple[bytes | None, Any | None]:
        """What the key holds here: its record's bytes and the record (None, None: nothing)."""
        data = self.records.get(bucket.name, partition, key)
        return data, (None if data is None else decode_record(data, "stored record"))

    def _keep(self, bucket: BucketSpec, partition: int, key: bytes, store: Store,
              held: tuple[bytes | None, Any | None], new: Any) -> None:
        """Store `merge(record held, new)` for the key, if it changes anything; `held` is `_held`'s answer."""
        old, here = held
        merged = new if here is None else store.merge(here, new)
        data = encode_record(merged)
        if old == data:
            return
        tree = self._tree(bucket.name, partition)  # built before the write, so the update below is its only change
        self.records.put(bucket.name, partition, key, data)
        tree.update(key, None if old is None else record_digest(old), record_digest(data))
        self._staged.append(Stored(bucket.name, partition, key, data))

    def _tree(self, bucket: str, partition: int) -> MerkleTree:
        tree = self._trees.get((bucket, partition))
        if tree is None:
            tree = self._trees[(bucket, partition)] = self.records.tree(bucket, partition)
        return tree

    # --- anti-entropy ----------------------------------------------------------------------------

    def _start_sync(self) -> None:
        """Compare one partition of one bucket with another replica of it."""
        if self.map is None or any(began for _, _, began in self._syncs):
            return  # one exchange of our own at a time
        mine = [p for p in self.map.partitions_of(self.node_id) if len(self.map.replicas_for(p)) > 1]
        buckets = sorted(name for name in self.buckets if self._has_store(name))
        if not mine or not buckets:
            return
        # Round robin over this node's partitions and buckets: 64 partitions are swept in about 16 s.
        pairs = [(bucket, partition) for partition in mine for bucket in buckets]
        self._sweep = (self._sweep + 1) % len(pairs)
        bucket, partition = pairs[self._sweep]
        self._open_sync(bucket, partition,
                        self.rng.choice([n for n in self.map.replicas_for(partition) if n != self.node_id]))

    def _open_sync(self, bucket: str, partition: int, peer: str, *, catch_up: bool = False) -> None:
        sid = next(self._ids)
        side = self._side(bucket, partition)
        self._syncs[(peer, sid, True)] = _Sync(side, bucket, partition, self.now + SYNC_TIMEOUT_S, catch_up=catch_up,
                                               epoch=self.epoch)
        self._send.append((peer, SyncOpen(sid, bucket, partition, self.epoch, side.begin(), self._clock())))

    def _catch_up(self) -> None:
        """A joiner compares each partition it joins with an owner until they are level, then says it is ready.

        The owner streams what the joiner lacks (whole slot ranges for an
        empty joiner, a page per tick), while new writes reach the joiner as
        to any replica. An exchange whose roots are equal at once finds the
        two level: when that holds for every bucket, the joiner reports
        the partition ready (repeated until a map makes it an owner).
        """
        if self.map is None or self.now < self._next_catch_up:
            return
        self._next_catch_up = self.now + CATCH_UP_EVERY_S
        epoch = self.map.epoch
        buckets = sorted(name for name in self.buckets if self._has_store(name))
        joining = [p for p, placement in enumerate(self.map.placements) if self.node_id in placement.joining]
        report = self.now >= self._next_report
        if report:
            self._next_report = self.now + REPORT_EVERY_S
        busy = {(s.bucket, s.partition) for (_, _, began), s in self._syncs.items() if began and s.catch_up}
        for partition in joining:
            level = self._in_sync.setdefault((partition, epoch), set())
            owners = self.map.readers_for(partition)
            wanted = {(bucket, owner) for bucket in buckets for owner in owners}
            if level.issuperset(wanted):
                if report:
                    self._ready.append((partition, epoch))
                continue
            for bucket in buckets:
                behind = sorted(owner for owner in owners if (bucket, owner) not in level)
                if behind and (bucket, partition) not in busy:
                    self._open_sync(bucket, partition, self.rng.choice(behind), catch_up=True)

    def _side(self, bucket: str, partition: int) -> TreeSync:
        return TreeSync(self._tree(bucket, partition),
                        lambda lo, hi: self.records.entries(bucket, partition, lo, hi))

    def _sync_opened(self, src: str, msg: SyncOpen) -> None:
        refused = self._refusal(msg.bucket, msg.partition)
        if refused or not isinstance(msg.begin, SyncBegin):
            self._send.append((src, ReplicaRefused(msg.id, self.epoch, refused or "not a sync")))
            return
        sync = _Sync(self._side(msg.bucket, msg.partition), msg.bucket, msg.partition, self.now + SYNC_TIMEOUT_S)
        self._syncs[(src, msg.id, False)] = sync
        self._sync_step(src, msg.id, False, sync, msg.begin)

    def _sync_turn(self, src: str, msg: SyncTurn) -> None:
        sync = self._syncs.get((src, msg.id, msg.to_initiator))
        if sync is not None and isinstance(msg.step, SyncStep):
            self._sync_step(src, msg.id, msg.to_initiator, sync, msg.step)

    def _sync_step(self, src: str, sid: int, began: bool, sync: _Sync, msg: SyncBegin | SyncStep) -> None:
        try:
            answer = sync.side.receive(msg)
        except (KeelError, ValueError) as exc:  # a peer's malformed turn: this exchange ends here
            self._syncs.pop((src, sid, began), None)
            self._events.append(BadRecord(src, sync.bucket, b"", f"sync: {exc}"))
            return
        if answer is not None:
            self._send.append((src, SyncTurn(sid, not began, answer, self._clock())))
        sync.turns += 1
        if sync.side.done:
            del self._syncs[(src, sid, began)]
            self.synced += 1
            result = sync.side.result()
            level = (sync.turns == 1 and isinstance(msg, SyncStep) and msg.final and not msg.want
                     and not result.keys and not result.ranges)
            if began and sync.catch_up and level:
                self._in_sync.setdefault((sync.partition, sync.epoch), set()).add((sync.bucket, src))
            clock = self._clock()
            for key in sorted(result.keys):
                data = self.records.get(sync.bucket, sync.partition, key)
                if data is not None:
                    self._send.append((src, ReplicaMerge(0, sync.bucket, sync.partition, key, data, clock, self.epoch)))
            for slots in result.ranges:
                self._streams.append(_Stream(src, sync.bucket, sync.partition, slots))

    def _stream_page(self) -> None:
        """Send the next page of the first slot range a peer lacks whole."""
        if not self._streams:
            return
        stream = self._streams[0]
        page, stream.after = self.records.scan(stream.bucket, stream.partition, stream.slots, stream.after, STREAM_PAGE)
        clock = self._clock()
        for key, data in page:
            self._send.append((stream.peer, ReplicaMerge(0, stream.bucket, stream.partition, key, data, clock,
                                                         self.epoch)))
        if stream.after is None:
            self._streams.popleft()

    def _valid(self, src: str, bucket: BucketSpec, store: Store, key: bytes, data: bytes) -> bool:
        if not data:
            return True  # a replica that holds nothing
        try:
            store.check_record(decode_record(data, "record"))
        except (WireError, ValueError) as exc:
            self._events.append(BadRecord(src, bucket.name, key, str(exc)))
            return False
        return True

    def _has_store(self, name: str) -> bool:
        try:
            self._store(name)
        except KeelError:
            return False
        return True

    def _store(self, name: str) -> tuple[BucketSpec, Store]:
        bucket = self.buckets.get(name)
        if bucket is None and not self.buckets_known:
            raise Unavailable(f"data node {self.node_id} has not read the bucket table from the core yet; retry")
        if bucket is None:
            raise UnknownBucket(f"bucket {name!r} does not exist (keel bucket list; keel bucket create)")
        cached = self._stores.get(name)
        if cached is None or cached[0] != bucket:
            cached = (bucket, self._build(bucket))
            self._stores[name] = cached
        if isinstance(cached[1], KeelError):
            raise cached[1]
        return cached  # type: ignore[return-value]

    def _build(self, bucket: BucketSpec) -> Store | KeelError:
        plugin = self.plugins.get(bucket.store)
        if plugin is None:
            installed = ", ".join(sorted(self.plugins)) or "none"
            return PluginError(f"bucket {bucket.name} uses store {bucket.store!r}, which data node {self.node_id} "
                               f"lacks (installed: {installed})")
        try:
            options = build(plugin.options, bucket.options, f"bucket {bucket.name} options") \
                if plugin.options is not None else None
            return plugin.create(options)
        except KeelError as exc:
            return exc

    def _clock(self) -> tuple[int, int, str]:
        return _plain(self.clock.now(self.wall_us))


@attrs.define
class _Sync:
    """One side of an anti-entropy exchange."""

    side: TreeSync
    bucket: str
    partition: int
    deadline: float
    catch_up: bool = False  # a joiner's exchange with an owner: level at once means it holds the partition
    epoch: int = 0
    turns: int = 0


@attrs.define
class _Stream:
    """A slot range of a partition to send a peer whole, from `after` on."""

    peer: str
    bucket: str
    partition: int
    slots: tuple[int, int]
    after: bytes | None = None


_HANDED = "handed"  # marks a reply that goes back to the node that handed the call over


def _plain(stamp: Timestamp) -> tuple[int, int, str]:
    return (stamp.wall, stamp.logical, stamp.node)

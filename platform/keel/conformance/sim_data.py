"""The data cluster in the simulator: data nodes that follow a simulated core, and clients that use them.

`SimDataNode` is a `keel.sim` node around the real `DataServer`, with what
the Trio runtime does around it done sans-I/O: it takes a lease from the
core, registers under it (`RegisterMember`) and keeps it alive, reads the
partition map and the bucket table every `FOLLOW_EVERY_S` (serializable
reads from any core server; a map older than the one held is ignored), and
sends the ready reports its server makes to the core leader (`DataReady`).
Its records live in `MemoryRecords`, rebuilt on restart from what it
persisted and the simulated disk made durable; its hybrid clock reads the
node's own (possibly skewed) clock.

`DataClient` puts unique values and gets keys through random data nodes (any
node coordinates, handing the call to a replica), one call at a time, and
reports `DataOp` events: invoked, then ok, fail or info (no answer: the write
may or may not have landed). Data nodes report `WriteMade` for every write
they coordinated: the record it made, which the checks compare reads against.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from typing import Any

import attrs

from keel import wire
from keel.conformance.sim_core import Caller
from keel.core.api import Call, LeaseGrant, LeaseGrantReply, LeaseKeepAlive, PutReply, Range, RangeReply
from keel.core.api.system import BUCKET_PREFIX, MAP_KEY, DataReady, RegisterMember
from keel.data.api import DataCall, DataReply
from keel.data.bucket import BucketSpec
from keel.data.partition_map import PartitionMap
from keel.data.server import DataServer, MemoryRecords
from keel.errors import KeelError
from keel.sim import Output
from keel.transport import ErrorReply, Request, Response

__all__ = ["BASE_WALL_S", "DataClient", "DataOp", "SimDataNode"]

BASE_WALL_S = 1_700_000_000.0  # the Unix time simulated time 0 stands for (hybrid clocks read wall time)
FOLLOW_EVERY_S = 0.2  # seconds between a data node's reads of the map and the bucket table
MEMBER_TTL_S = 1.5  # seconds a data node's registration outlives its last keep-alive
CORE_TIMEOUT_S = 1.0  # seconds one core call may take, retries included


@attrs.frozen
class DataOp:
    """Event: a client's call: `invoke`, then `ok` (with its result), `fail` (refused) or `info` (unknown)."""

    client: str
    rid: int
    phase: str
    op: str
    key: bytes
    value: bytes | None
    time: float


class SimDataNode:
    """A `DataServer` as a simulated node that follows the simulated core; see the module doc."""

    def __init__(self, node_id: str, durable: tuple[Any, ...], rng: random.Random, *, core: tuple[str, ...],
                 stores: Mapping[str, Any]) -> None:
        self.node_id = node_id
        self.records = MemoryRecords(durable)
        self.server = DataServer(node_id, stores=stores, records=self.records, rng=rng,
                                 clock_floor=self.records.high_water)
        self.server.report_writes = True
        self.rng = rng
        self.session = f"{node_id}-{rng.getrandbits(32):08x}"  # a new session per incarnation
        ids = itertools.count(1)
        self.writer = Caller(node_id, rng, core, ids)  # lease, registration, keep-alives, ready reports
        self.reader = Caller(node_id, rng, core, ids)  # the map and the buckets
        self.seq = 0
        self.acked = 0
        self.lease: int | None = None
        self.registered = False
        self.next_keepalive = 0.0
        self.next_follow = 0.0
        self.follow_buckets = False
        self.ready: set[tuple[int, int]] = set()
        self.now = 0.0

    # --- the node -----------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        self.now = now
        self.server.tick(now, BASE_WALL_S + now)
        self.writer.tick(now)
        self.reader.tick(now)
        if self.writer.idle:
            self._next_core_call()
        if self.reader.idle and now >= self.next_follow:
            self.next_follow = now + FOLLOW_EVERY_S
            self.follow_buckets = not self.follow_buckets
            key, prefix = (BUCKET_PREFIX, True) if self.follow_buckets else (MAP_KEY, False)
            self.reader.call(Call(self.session, 0, self.acked, Range(key, prefix=prefix, serializable=True)),
                             timeout=CORE_TIMEOUT_S, on_done=self._followed)

    def receive(self, src: str, message: Any) -> None:
        if isinstance(message, Response):
            if not self.writer.receive(src, message):
                self.reader.receive(src, message)
        elif isinstance(message, Request):
            self.server.request((src, message.id), message.body)
        else:
            self.server.receive(src, message)

    def poll(self) -> Output:
        out = self.server.poll()
        self.ready.update(out.ready)
        replies = [(client, Response(rid, reply)) for (client, rid), reply in out.replies]
        sends = [*out.send, *replies, *self.writer.take_sends(), *self.reader.take_sends()]
        return Output(persist=out.persist, send_early=out.send_early, send=sends, events=out.events)

    # --- following the core ---------------------------------------------------------------------

    def _next_core_call(self) -> None:
        if self.lease is None:
            self._mutate(LeaseGrant(MEMBER_TTL_S), self._granted)
        elif not self.registered:
            self._mutate(RegisterMember(self.node_id, b"sim", self.lease), self._registered)
        elif self.now >= self.next_keepalive:
            self.next_keepalive = self.now + MEMBER_TTL_S / 3
            self.writer.call(Call(self.session, 0, self.acked, LeaseKeepAlive(self.lease)), timeout=CORE_TIMEOUT_S,
                             on_done=self._kept)
        elif self.ready:
            partition, epoch = min(self.ready)
            self.ready.discard((partition, epoch))
            self.writer.call(Call(self.session, 0, self.acked, DataReady(self.node_id, partition, epoch)),
                             timeout=CORE_TIMEOUT_S, on_done=lambda reply, maybe: None)

    def _mutate(self, op: Any, done: Any) -> None:
        self.seq += 1
        seq = self.seq

        def settle(reply: Any, maybe: bool) -> None:
            self.acked = max(self.acked, seq)  # answered or given up: never sent again
            if isinstance(reply, ErrorReply) and reply.kind == "session_expired":
                # The core never applied a request of this session (its first ones timed out): start a
                # new one, as keel's client does.
                self.session = f"{self.node_id}-{self.rng.getrandbits(32):08x}"
                self.seq = self.acked = 0
            done(reply)

        self.writer.call(Call(self.session, seq, self.acked, op), timeout=CORE_TIMEOUT_S, on_done=settle)

    def _granted(self, reply: Any) -> None:
        if isinstance(reply, LeaseGrantReply):
            self.lease, self.registered = reply.id, False
            self.next_keepalive = self.now + MEMBER_TTL_S / 3

    def _registered(self, reply: Any) -> None:
        if isinstance(reply, PutReply):
            self.registered = True
        elif isinstance(reply, ErrorReply) and reply.kind == "lease_expired":
            self.lease = None

    def _kept(self, reply: Any, maybe: bool) -> None:
        if isinstance(reply, ErrorReply) and reply.kind == "lease_expired":
            self.lease = None  # gone: take a new one and register again

    def _followed(self, reply: Any, maybe: bool) -> None:
        if not isinstance(reply, RangeReply):
            return
        if any(kv.key.startswith(BUCKET_PREFIX) for kv in reply.kvs) or self.follow_buckets:
            buckets = {}
            for kv in reply.kvs:
                try:
                    spec = BucketSpec.from_bytes(kv.value)
                except KeelError:
                    continue
                buckets[spec.name] = spec
            if buckets:
                self.server.set_buckets(buckets)
        for kv in reply.kvs:
            if kv.key == MAP_KEY:
                self.server.set_map(PartitionMap.from_bytes(kv.value))


class DataClient:
    """Puts unique values and gets keys through random data nodes, one call at a time."""

    def __init__(self, node_id: str, rng: random.Random, *, data_nodes: tuple[str, ...], keys: tuple[bytes, ...],
                 bucket: str, timeout: float, think: tuple[float, float], start_at: float, stop_at: float) -> None:
        self.node_id = node_id
        self.rng = rng
        self.data_nodes = data_nodes
        self.keys = keys
        self.bucket = bucket
        self.timeout = timeout
        self.think = think
        self.start_at = start_at
        self.stop_at = stop_at
        self.rid = 0
        self.pending: tuple[int, str, bytes, bytes | None, float] | None = None
        self.next_at = start_at
        self.sends: list[tuple[str, Any]] = []
        self.events: list[Any] = []
        self.now = 0.0

    def tick(self, now: float) -> None:
        self.now = now
        if self.pending is not None and now >= self.pending[4]:
            rid, op, key, value, _ = self.pending
            self.pending = None
            self.events.append(DataOp(self.node_id, rid, "info", op, key, value, now))
            self.next_at = now + self.rng.uniform(*self.think)
        if self.pending is None and self.next_at <= now < self.stop_at:
            self.rid += 1
            key = self.rng.choice(self.keys)
            if self.rng.random() < 0.5:
                op, value = "put", f"{self.node_id}.{self.rid}".encode()
                args = wire.encode_plain([value])
            else:
                op, value, args = "get", None, wire.encode_plain([])
            self.pending = (self.rid, op, key, value, now + self.timeout)
            self.events.append(DataOp(self.node_id, self.rid, "invoke", op, key, value, now))
            call = DataCall(self.bucket, key, op, args, timeout=self.timeout * 0.8)
            self.sends.append((self.rng.choice(self.data_nodes), Request(self.rid, call)))

    def receive(self, src: str, message: Any) -> None:
        if not isinstance(message, Response) or self.pending is None or message.id != self.pending[0]:
            return
        rid, op, key, value, _ = self.pending
        self.pending = None
        reply = message.body
        if isinstance(reply, DataReply):
            result = wire.decode_plain(reply.result, "result")
            self.events.append(DataOp(self.node_id, rid, "ok", op, key, result if op == "get" else value, self.now))
        else:
            # A refused write may still have reached some replicas (TooFewReplicas): unknown, not failed.
            phase = "info" if op == "put" else "fail"
            self.events.append(DataOp(self.node_id, rid, phase, op, key, value, self.now))
        self.next_at = self.now + self.rng.uniform(*self.think)

    def poll(self) -> Output:
        sends, self.sends = self.sends, []
        events, self.events = self.events, []
        return Output(send=sends, events=events)

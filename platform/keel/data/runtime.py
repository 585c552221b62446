"""DataRuntime: Trio drives a `DataServer` with a record file, a real clock, a transport and the core.

Theory of operation. All data logic is in the sans-I/O `DataServer`; this
runtime feeds it inputs and carries out each poll:

- **persist**: a poll's records join the next commit. One syncer task
  writes everything queued so far in one transaction of the record file
  (`RecordFile.write_batch`, WAL and `synchronous=FULL`, in a worker
  thread) with the hybrid clock's high water: a group commit, while the
  event loop goes on taking requests. Until the commit returns, the
  records stay in an overlay that reads see first.
- **send and replies**: a poll's messages and answers wait until every
  record written by that poll and the ones before it is durable; a poll
  that wrote nothing lets them go at once (after earlier held ones, so the
  order per peer holds). So no acknowledgement ever leaves before what it
  acknowledges is on disk: a SIGKILL loses nothing acknowledged.
- **the core**: one task keeps a core client: it takes a lease, registers
  the node (`RegisterMember`: its id, addresses and stores, gone with the
  lease), and follows the partition map, the bucket table and the other
  data members by watch, handing each new state to the server (and the
  members' addresses to the transport). When the lease is lost it
  registers again; when the core is unreachable it retries with backoff
  and the node goes on serving with the map it has.

Every wait has a deadline: a client's call waits at most its own timeout
plus the request timeout.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import trio

from keel.address import Address
from keel.core.api import Range, RegisterMember
from keel.core.api.system import DataReady
from keel.core.api.system import BUCKET_PREFIX, MAP_KEY, MEMBER_PREFIX
from keel.data.api import DataCall, DataCallBatch, DataCallBatchReply, DataStatusReply, PeerBatch
from keel.data.bucket import BucketSpec
from keel.data.membership import MemberInfo
from keel.data.merkle import MerkleTree, record_digest, slot_of
from keel.data.partition_map import PartitionMap
from keel.data.records import RecordFile, Write
from keel.data.server import DataOutput, DataServer, StoredBatch
from keel.errors import Compacted, KeelError, Unavailable
from keel.transport import ClientSettings, Transport, error_reply, raise_if_error

__all__ = ["MEMBER_TTL_S", "DataRuntime"]

log = logging.getLogger("keel.data")

TICK_S = 0.05  # seconds between ticks: deadlines of calls waiting for replicas
MEMBER_TTL_S = 5.0  # seconds a data node's registration outlives its last keep-alive
FOLLOW_BACKOFF_S = (0.2, 2.0)  # first and longest wait between attempts to reach the core
RECORDS_FILE = "records.sqlite"
REPORT_S = 0.5  # seconds between rounds of ready reports to the core


class _Overlay:
    """The server's `RecordStore`: what it wrote and no commit has covered yet, over the record file."""

    def __init__(self, file: RecordFile) -> None:
        self.file = file
        self.pending: dict[tuple[str, int, bytes], bytes | None] = {}
        self.dropping: set[tuple[str, int]] = set()  # partitions let go of, until the file has dropped them

    def get(self, bucket: str, partition: int, key: bytes) -> bytes | None:
        where = (bucket, partition, key)
        if where in self.pending:
            return self.pending[where]
        if (bucket, partition) in self.dropping:
            return None
        return self.file.get(bucket, partition, key)

    def held_partitions(self) -> set[tuple[str, int]]:
        held = {(row.bucket, row.partition) for row in self.file.partition_counts()} - self.dropping
        return held | {where[:2] for where, record in self.pending.items() if record is not None}

    def drop(self, bucket: str, partition: int) -> None:
        self.dropping.add((bucket, partition))
        for where in [w for w in self.pending if w[:2] == (bucket, partition)]:
            del self.pending[where]

    def put(self, bucket: str, partition: int, key: bytes, record: bytes | None) -> None:
        self.pending[(bucket, partition, key)] = record

    def tree(self, bucket: str, partition: int) -> MerkleTree:
        tree = self.file.tree(bucket, partition)
        for (b, p, key), record in self.pending.items():
            if (b, p) == (bucket, partition):
                tree.update(key, self.file.digest(b, p, key), None if record is None else record_digest(record))
        return tree

    def entries(self, bucket: str, partition: int, lo: int, hi: int) -> list[tuple[bytes, bytes]]:
        held = dict(self.file.entries(bucket, partition, lo, hi))
        for (b, p, key), record in self.pending.items():
            if (b, p) == (bucket, partition) and lo <= slot_of(key) < hi:
                if record is None:
                    held.pop(key, None)
                else:
                    held[key] = record_digest(record)
        return sorted(held.items(), key=lambda item: (slot_of(item[0]), item[0]))

    def scan(self, bucket: str, partition: int, slots: tuple[int, int], after: bytes | None,
             limit: int) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
        # What is committed; a write still pending reaches the peer by replication or the next exchange.
        page = self.file.scan(bucket, partition, after, limit=limit, slots=slots)
        return list(page.items), page.resume

    def committed(self, writes: list[Write]) -> None:
        for w in writes:
            where = (w.bucket, w.partition, w.key)
            if where in self.pending and self.pending[where] is w.record:
                del self.pending[where]  # unless written again since


def _trees(file: RecordFile) -> dict[tuple[str, int], MerkleTree]:
    """The hash tree of every partition the file holds records of (blocking: a scan of the file)."""
    return {(row.bucket, row.partition): file.tree(row.bucket, row.partition) for row in file.partition_counts()}


class DataRuntime:
    """One node's part of the data cluster."""

    def __init__(self, *, node_id: str, stores: Mapping[str, Any], data_dir: Path, transport: Transport,
                 core: Callable[[], Any], core_peers: tuple[tuple[str, Address], ...],
                 request_timeout: float) -> None:
        """`core()` opens a core client (an async context manager); `core_peers` are the core's peer links."""
        self.node_id = node_id
        self.stores = dict(stores)
        self.data_dir = data_dir
        self.transport = transport
        self.core = core
        self.core_peers = core_peers
        self.request_timeout = request_timeout
        self.info: MemberInfo | None = None  # set by the node once its transport is bound
        self.server: DataServer | None = None
        self.file: RecordFile | None = None
        self.overlay: _Overlay | None = None
        self.members: dict[str, MemberInfo] = {}
        self._waiting: dict[int, trio.MemorySendChannel[Any]] = {}
        self._next_ref = 0
        self._queued: list[StoredBatch] = []
        self._held: deque[tuple[int, DataOutput]] = deque()
        self._written = 0
        self._durable = 0
        self._dirty = trio.Event()
        self._kicked = trio.Event()
        self._reports: set[tuple[int, int]] = set()  # (partition, epoch) this node holds and joins: tell the leader

    async def open(self) -> None:
        """Open the record file and build the server (blocking file work in a thread).

        Raises:
            StorageError: the file is damaged, another application's or another node's (naming it).
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.file = await trio.to_thread.run_sync(RecordFile.open, self.data_dir / RECORDS_FILE, self.node_id)
        self.overlay = _Overlay(self.file)
        trees = await trio.to_thread.run_sync(_trees, self.file)
        self.server = DataServer(self.node_id, stores=self.stores, records=self.overlay,
                                 rng=random.Random(int.from_bytes(random.SystemRandom().randbytes(8), "big")),
                                 clock_floor=self.file.high_water, trees=trees)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Tick, sync, serve and follow the core until cancelled; the record file is closed on the way out."""
        assert self.server is not None and self.info is not None, "open() and info first"
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._tick)
                nursery.start_soon(self._sync)
                nursery.start_soon(self._poller)
                nursery.start_soon(self._follow)
                task_status.started()
        finally:
            if self.file is not None:
                self.file.close()

    # --- inputs ------------------------------------------------------------------------------

    def deliver(self, src: str, message: Any) -> None:
        """A peer's message for the data server (a `PeerBatch`: each of its messages, in order)."""
        assert self.server is not None
        self._advance()
        for one in message.messages if isinstance(message, PeerBatch) else (message,):
            self.server.receive(src, one)
        self._kicked.set()

    async def handle_batch(self, batch: DataCallBatch) -> DataCallBatchReply:
        """Answer every call of a batch, each as if it came alone (an error is that call's answer)."""
        replies: list[Any] = [None] * len(batch.calls)

        async def one(i: int, call: DataCall) -> None:
            try:
                replies[i] = await self.handle(call)
            except KeelError as exc:
                replies[i] = error_reply(exc)

        async with trio.open_nursery() as nursery:
            for i, call in enumerate(batch.calls):
                nursery.start_soon(one, i, call)
        return DataCallBatchReply(tuple(replies))

    async def handle(self, call: DataCall) -> Any:
        """Answer one client call.

        Raises:
            KeelError: the answer is a typed error (`TooFewReplicas`, `UnknownBucket`…).
            Unavailable: no answer in time.
        """
        assert self.server is not None
        self._next_ref += 1
        ref = self._next_ref
        send, receive = trio.open_memory_channel[Any](1)
        self._waiting[ref] = send
        budget = max(0.0, min(float(call.timeout), 60.0)) + self.request_timeout
        try:
            self._advance()
            self.server.request(ref, call)
            self._kicked.set()
            with trio.move_on_after(budget):
                return raise_if_error(await receive.receive())
            raise Unavailable(f"{call.op} {call.key!r}: no answer within {budget:g} s")
        finally:
            del self._waiting[ref]

    def _advance(self) -> None:
        assert self.server is not None
        self.server.tick(trio.current_time(), time.time())

    # --- the loops -------------------------------------------------------------------------------

    async def _tick(self) -> None:
        while True:
            self._advance()
            self._pump()
            await trio.sleep(TICK_S)

    async def _poller(self) -> None:
        while True:
            await self._kicked.wait()
            self._kicked = trio.Event()
            self._pump()

    async def _sync(self) -> None:
        assert self.file is not None and self.overlay is not None
        while True:
            await self._dirty.wait()
            self._dirty = trio.Event()
            target, batches = self._written, self._queued
            self._queued = []
            # A batch's drops come before its records, and after the records of earlier batches.
            last_drop = {where: i for i, b in enumerate(batches) for where in b.dropped}
            writes = [Write(r.bucket, r.partition, r.key, r.record) for i, b in enumerate(batches) for r in b.records
                      if last_drop.get((r.bucket, r.partition), -1) <= i]
            dropped = list(last_drop)
            high_water = max(b.high_water for b in batches)
            for bucket, partition in dropped:
                await trio.to_thread.run_sync(self.file.drop_partition, bucket, partition)
            await trio.to_thread.run_sync(self.file.write_batch, writes, high_water)
            self.overlay.dropping.difference_update(dropped)
            self.overlay.committed(writes)
            self._durable = target
            self._release()

    def _pump(self) -> None:
        assert self.server is not None
        while True:
            out = self.server.poll()
            if not (out.persist or out.send_early or out.send or out.replies or out.events or out.ready):
                return
            if out.send_early:  # waits only for what earlier polls wrote
                self._held.append((self._written, DataOutput(send=out.send_early)))
            if out.persist:
                self._queued.extend(out.persist)
                self._written += 1
                self._dirty.set()
            for event in out.events:
                log.info("data %s: %s", self.node_id, event)
            self._reports.update(out.ready)
            if out.send or out.replies:
                self._held.append((self._written, out))
            self._release(pump=False)

    def _release(self, *, pump: bool = True) -> None:
        assert self.server is not None
        to_self = False
        outgoing: dict[str, list[Any]] = {}
        replies: list[tuple[Any, Any]] = []
        while self._held and self._held[0][0] <= self._durable:
            _, out = self._held.popleft()
            for dst, message in out.send:
                if dst == self.node_id:
                    self.server.receive(dst, message)
                    to_self = True
                else:
                    outgoing.setdefault(dst, []).append(message)
            replies.extend(out.replies)
        for dst, messages in outgoing.items():  # one frame per peer for everything released at once
            self.transport.send(dst, messages[0] if len(messages) == 1 else PeerBatch(tuple(messages)))
        for ref, reply in replies:
            waiter = self._waiting.get(ref)
            if waiter is not None:
                waiter.send_nowait(reply)
        if to_self and pump:
            self._pump()

    # --- following the core -------------------------------------------------------------------

    async def _follow(self) -> None:
        assert self.info is not None
        backoff = FOLLOW_BACKOFF_S[0]
        while True:
            try:
                async with self.core() as core, core.lease(MEMBER_TTL_S) as lease:
                    await core.caller.mutate(RegisterMember(self.node_id, self.info.to_bytes(), lease.id))
                    log.info("data %s: registered with the core under lease %d", self.node_id, lease.id)
                    backoff = FOLLOW_BACKOFF_S[0]
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._watch, core, MAP_KEY, False, self._on_map)
                        nursery.start_soon(self._watch, core, BUCKET_PREFIX, True, self._on_buckets)
                        nursery.start_soon(self._watch, core, MEMBER_PREFIX, True, self._on_members)
                        nursery.start_soon(self._report, core)
            except KeelError as exc:
                log.warning("data %s: following the core: %s; again in %.1f s", self.node_id, exc, backoff)
            await trio.sleep(backoff)
            backoff = min(backoff * 2, FOLLOW_BACKOFF_S[1])

    async def _report(self, core: Any) -> None:
        """Tell the core leader's controller which joined partitions this node now holds."""
        while True:
            reports, self._reports = sorted(self._reports), set()
            for partition, epoch in reports:
                try:
                    await core.caller.read(DataReady(self.node_id, partition, epoch))
                except KeelError as exc:  # the server reports again while the map still has it joining
                    log.info("data %s: ready report for partition %d: %s", self.node_id, partition, exc)
            await trio.sleep(REPORT_S)

    async def _watch(self, core: Any, key: bytes, prefix: bool, apply: Callable[[dict[bytes, bytes]], None]) -> None:
        """Keep `apply` fed with everything under `key` as the core holds it, read once then watched."""
        while True:
            reply = await core.caller.read(Range(key, prefix=prefix))
            held = {kv.key: kv.value for kv in reply.kvs}
            apply(held)
            try:
                async for event in core.watch(key, prefix=prefix, start_revision=reply.revision + 1):
                    if event.kind == "delete":
                        held.pop(event.kv.key, None)
                    else:
                        held[event.kv.key] = event.kv.value
                    apply(held)
            except Compacted:
                continue  # read it all again

    def _on_map(self, held: dict[bytes, bytes]) -> None:
        assert self.server is not None
        data = held.get(MAP_KEY)
        if data is None:
            return
        try:
            self.server.set_map(PartitionMap.from_bytes(data))
        except KeelError as exc:
            log.error("data %s: the core's partition map is unreadable: %s", self.node_id, exc)
        self._kicked.set()

    def _on_buckets(self, held: dict[bytes, bytes]) -> None:
        assert self.server is not None
        buckets = {}
        for key, value in held.items():
            try:
                bucket = BucketSpec.from_bytes(value)
            except KeelError as exc:
                log.error("data %s: bucket %r in the core is unreadable: %s", self.node_id, key, exc)
                continue
            buckets[bucket.name] = bucket
        self.server.set_buckets(buckets)

    def _on_members(self, held: dict[bytes, bytes]) -> None:
        members = {}
        for key, value in held.items():
            node = key[len(MEMBER_PREFIX):].decode(errors="replace")
            try:
                members[node] = MemberInfo.from_bytes(value)
            except KeelError as exc:
                log.error("data %s: member %s's registration is unreadable: %s", self.node_id, node, exc)
        self.members = members
        peers = dict(self.core_peers)
        peers.update({node: info.peer for node, info in members.items() if node != self.node_id})
        self.transport.set_peers(tuple(sorted(peers.items())))

    def status(self) -> DataStatusReply:
        """What `keel status` shows of this data node."""
        assert self.server is not None and self.file is not None
        pmap = self.server.map
        return DataStatusReply(
            epoch=pmap.epoch if pmap else 0,
            partitions=pmap.partitions_of(self.node_id) if pmap else (),
            records=self.file.count(),
            buckets=tuple(sorted(self.server.buckets)),
            members=tuple(sorted(self.members)),
        )

"""CoreRuntime: Trio drives a `CoreServer` with a real disk, a real clock and a transport.

Theory of operation. All core logic is in the sans-I/O `CoreServer`; this
runtime feeds it inputs (ticks, peer messages, client requests) and carries
out each poll:

- **persist**: log operations are appended to the `DurableLog`'s buffer (no
  system call); snapshots join a queue for the snapshot store. A single
  syncer task then makes everything written so far durable: it saves the
  queued snapshots, then fsyncs the log once for every write made since the
  last sync (group commit), in a worker thread, while the event loop goes on
  taking requests and writing the next batch (pipelining).
- **send**: a poll's messages wait until the sync covering that poll's
  writes has returned; a poll that wrote nothing sends at once (after any
  earlier poll's messages, so order per peer holds). Its `send_early`
  messages (a leader's appends) wait only for earlier polls' writes, so
  followers write a batch while the leader does. A message to this node
  itself goes back into the server once released: that is how an engine
  learns its own log is durable.
- **replies**: go to the waiting request handler at once (an answer comes
  from applied state, already committed by a quorum).

Inputs do not poll by themselves: they wake one poller task, which polls
once for every input that arrived while other tasks ran. A burst of
requests thus becomes one append batch and one fsync at no extra latency
(the poller runs right after the tasks that woke it).

A request handler waits for its answer with a deadline: the config's
request timeout, plus a watch's or lock's own wait. Every task lives in
the runtime's nursery; stopping cancels it, and a leader first hands its
leadership to a peer (`transfer_leadership`) so the cluster does not wait
an election timeout.
"""

from __future__ import annotations

import gc
import logging
import os
import random
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from keel.consensus import EngineSettings, LeaderChanged, RoleChanged, StoredSnapshot
from keel.contract import ConsensusPlugin
from keel.core.api import Batch, BatchReply, Call, Campaign, CoreStatus, CoreStatusReply, Lock, Watch
from keel.core.log import DurableLog, SnapshotStore
from keel.core.machine import CoreMachine
from keel.core.server import MAX_WAIT_S, CoreServer, ServerOutput
from keel.errors import KeelError, Unavailable
from keel.transport import Transport, error_reply, raise_if_error

__all__ = ["TICK_S", "CoreRuntime"]

log = logging.getLogger("keel.core")

TICK_S = 0.01  # seconds between engine ticks; a fifth of the default heartbeat
SNAPSHOT_EVERY = 10_000  # applied entries between snapshots of the state machine
TRANSFER_WAIT_S = 1.0  # seconds a stopping leader waits for a peer to take over
GC_FREEZE_S = 5.0  # seconds between moving what survived so far out of the garbage collector's scans
GC_FULL_S = 60.0  # seconds between full collections on a node that does not lead
SLOW_POLL_S = 0.05  # seconds; a poll this long delays heartbeats by a third of an election timeout


class CoreRuntime:
    """One node's part of the consistent core."""

    def __init__(self, *, node_id: str, plugin: ConsensusPlugin, settings: EngineSettings, data_dir: Path,
                 transport: Transport, request_timeout: float, snapshot_every: int = SNAPSHOT_EVERY,
                 observe: Callable[[Any], None] = lambda event: None) -> None:
        self.node_id = node_id
        self.plugin = plugin
        self.settings = settings
        self.data_dir = data_dir
        self.transport = transport
        self.request_timeout = request_timeout
        self.snapshot_every = snapshot_every
        self.observe = observe  # sees every RoleChanged and LeaderChanged, for logs and hooks
        self.server: CoreServer | None = None
        self.wal: DurableLog | None = None
        self.snapshots: SnapshotStore | None = None
        self._waiting: dict[int, Any] = {}  # ref -> the channel of a lone request, or a _Slot of a batch
        self.requests = 0  # client calls taken, for `keel status` and `keel bench data`
        self._next_ref = 0
        self._held: deque[tuple[int, tuple[tuple[str, Any], ...]]] = deque()  # (writes needed durable, sends)
        self._written = 0  # polls that wrote something
        self._durable = 0  # of those, how many are durable
        self._queued_snapshots: list[StoredSnapshot] = []
        self._dirty = trio.Event()  # something was written that no sync covers yet
        self._kicked = trio.Event()  # inputs arrived that no poll has seen yet
        self._snapshot_due = trio.Event()  # the server wants a snapshot encoded

    async def open(self) -> None:
        """Recover the log and the snapshot from disk and build the server (blocking file work in a thread).

        Raises:
            StorageError: the log or the snapshot is damaged (naming file and offset).
        """
        self.wal, self.snapshots, stored = await trio.to_thread.run_sync(self._open_files)
        snapshot = StoredSnapshot(stored.meta, stored.data) if stored is not None else None
        recovered = self.wal.recovered()
        self.server = CoreServer(self.node_id, create=self.plugin.create, settings=self.settings,
                                 rng=random.Random(int.from_bytes(os.urandom(8), "big")), recovered=recovered,
                                 snapshot=snapshot, snapshot_every=self.snapshot_every, consensus=self.plugin.name,
                                 defer_snapshots=True)

    def _open_files(self) -> tuple[DurableLog, SnapshotStore, Any]:
        wal = DurableLog.open(self.data_dir / "wal")
        try:
            snapshots = SnapshotStore.open(self.data_dir / "snapshots")
            return wal, snapshots, snapshots.load()
        except BaseException:
            wal.close()
            raise

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Tick, sync and serve until cancelled; the log is closed on the way out."""
        assert self.server is not None, "open() first"
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._tick)
                nursery.start_soon(self._sync)
                nursery.start_soon(self._poller)
                nursery.start_soon(self._snapshotter)
                task_status.started()
        finally:
            if self.wal is not None:
                self.wal.close()

    # --- inputs ------------------------------------------------------------------------------

    def deliver(self, src: str, message: Any) -> None:
        """A peer's message for the engine."""
        assert self.server is not None
        self.server.advance(trio.current_time())
        self.server.receive(src, message)
        self._kicked.set()

    async def handle(self, request: Call | CoreStatus) -> Any:
        """Answer one client request.

        Raises:
            KeelError: the answer is an error (`NotLeader` with its hint, `LeaseExpired`…).
            Unavailable: no answer came in time.
        """
        assert self.server is not None
        if isinstance(request, CoreStatus):
            return self.status()  # with what only the runtime knows (the log's size on disk)
        self.requests += 1
        self._next_ref += 1
        ref = self._next_ref
        send, receive = trio.open_memory_channel[Any](1)
        self._waiting[ref] = send
        op = request.op if isinstance(request, Call) else None
        wait = op.wait if isinstance(op, (Watch, Lock, Campaign)) else 0.0
        # The server refuses a wait outside 0…MAX_WAIT_S; until it does, the budget must not break on one.
        budget = self.request_timeout + (min(wait, MAX_WAIT_S) if wait > 0 else 0.0)
        try:
            self.server.advance(trio.current_time())
            self.server.request(ref, request)
            self._kicked.set()
            with trio.move_on_after(budget):
                return raise_if_error(await receive.receive())
            raise Unavailable(f"{type(op or request).__name__}: no answer within {budget:g} s "
                              f"(no leader, or no quorum)")
        finally:
            del self._waiting[ref]

    async def handle_batch(self, batch: Batch) -> BatchReply:
        """Answer every call of a batch; a call unanswered in the request timeout gets `Unavailable`."""
        assert self.server is not None
        self.requests += len(batch.calls)
        replies: list[Any] = [None] * len(batch.calls)
        send, receive = trio.open_memory_channel[tuple[int, Any]](len(batch.calls))
        refs = {}
        self.server.advance(trio.current_time())
        try:
            for i, call in enumerate(batch.calls):
                if isinstance(call.op, (Watch, Lock, Campaign)):
                    replies[i] = error_reply(KeelError(f"{type(call.op).__name__} cannot travel in a batch"))
                    continue
                self._next_ref += 1
                refs[self._next_ref] = i
                self._waiting[self._next_ref] = _Slot(send, i)
                self.server.request(self._next_ref, call)  # answers every refusal itself, as a reply
            self._kicked.set()
            with trio.move_on_after(self.request_timeout):
                for _ in range(len(refs)):
                    i, reply = await receive.receive()
                    replies[i] = reply
        finally:
            for ref in refs:
                del self._waiting[ref]
        late = error_reply(Unavailable(f"no answer within {self.request_timeout:g} s (no leader, or no quorum)"))
        return BatchReply(tuple(late if reply is None else reply for reply in replies))

    def status(self) -> CoreStatusReply:
        assert self.server is not None and self.wal is not None
        return attrs.evolve(self.server.status(), log_bytes=self.wal.disk_bytes, requests=self.requests)

    async def stop(self) -> None:
        """Before cancelling: a leader hands over, so the others need not wait out an election timeout."""
        server = self.server
        if server is None or not server.leading:
            return
        try:
            server.node.engine.transfer_leadership()
        except Exception:  # noqa: BLE001 - a peer not caught up, say; stopping goes on regardless
            return
        self._pump()
        with trio.move_on_after(TRANSFER_WAIT_S):
            while server.leading:
                await trio.sleep(TICK_S)

    # --- the loops -----------------------------------------------------------------------------

    async def _tick(self) -> None:
        assert self.server is not None
        frozen_at = collected_at = trio.current_time()
        while True:
            self.server.tick(trio.current_time())
            self._pump()
            now = trio.current_time()
            if now - collected_at >= GC_FULL_S and not self.server.leading:
                # Freezing also keeps cyclic garbage that had reached the oldest generation; a node
                # that does not lead can afford the pause of collecting it now and then.
                gc.unfreeze()
                gc.collect()
                collected_at = now
            if now - frozen_at >= GC_FREEZE_S:
                # The keyspace and its history are long-lived and free of cycles: moved out of the
                # collector's sight, they no longer make a full collection pause the loop for
                # tens of milliseconds; reference counting still frees them when they go.
                gc.freeze()
                frozen_at = now
            await trio.sleep(TICK_S)

    async def _poller(self) -> None:
        # Inputs only kick; this task polls once for everything that arrived
        # while the other tasks ran (requests read in one batch, replies from
        # several peers), so a burst becomes one append batch and one fsync.
        while True:
            await self._kicked.wait()
            self._kicked = trio.Event()
            started = trio.current_time()
            self._pump()
            took = trio.current_time() - started
            if took > SLOW_POLL_S:
                log.warning("core %s: one poll took %.0f ms; heartbeats wait meanwhile", self.node_id, took * 1e3)

    async def _snapshotter(self) -> None:
        # Encoding a large state takes long enough to miss heartbeats; a
        # worker thread does it from an immutable capture while the loop goes on.
        assert self.server is not None
        node = self.server.node
        while True:
            await self._snapshot_due.wait()
            self._snapshot_due = trio.Event()
            job = node.snapshot_job
            if job is None:
                continue
            meta, state = job
            blob = await trio.to_thread.run_sync(CoreMachine.encode, state)
            node.snapshot_encoded(meta, blob)
            self._kicked.set()

    async def _sync(self) -> None:
        assert self.wal is not None and self.snapshots is not None
        while True:
            await self._dirty.wait()
            self._dirty = trio.Event()
            # Snapshots and log writes are taken together: the log's CompactTo
            # relies on the snapshots, which are saved first, and a write made
            # meanwhile (perhaps the next CompactTo) waits for the next round.
            target, snapshots = self._written, self._queued_snapshots
            self._queued_snapshots = []
            taken = self.wal.take()
            for snapshot in snapshots:
                await trio.to_thread.run_sync(self.snapshots.save, snapshot.meta, snapshot.data)
            await trio.to_thread.run_sync(self.wal.sync_taken, taken)
            self._durable = target
            self._release()

    def _pump(self) -> None:
        """Poll the server and carry out what it asks, until it asks nothing more."""
        assert self.server is not None and self.wal is not None
        while True:
            out: ServerOutput = self.server.poll()
            if not (out.persist or out.send_early or out.send or out.replies or out.events):
                return
            if out.send_early:
                self._held.append((self._written, out.send_early))  # what earlier polls wrote
            if out.persist:
                ops = []
                for record in out.persist:
                    if isinstance(record, StoredSnapshot):
                        self._queued_snapshots.append(record)
                    else:
                        ops.append(record)
                self.wal.write(ops)
                self._written += 1
                self._dirty.set()
            if out.send:
                self._held.append((self._written, out.send))
            for event in out.events:
                if isinstance(event, (RoleChanged, LeaderChanged)):
                    self.observe(event)
            for ref, reply in out.replies:
                waiter = self._waiting.get(ref)
                if isinstance(waiter, _Slot):
                    waiter.channel.send_nowait((waiter.index, reply))  # sized for the whole batch
                elif waiter is not None:
                    waiter.send_nowait(reply)  # capacity 1, one answer per request
            self._release(pump=False)
            if self.server.node.snapshot_job is not None:
                self._snapshot_due.set()

    def _release(self, *, pump: bool = True) -> None:
        assert self.server is not None
        to_self = False
        while self._held and self._held[0][0] <= self._durable:
            _, sends = self._held.popleft()
            for dst, message in sends:
                if dst == self.node_id:
                    self.server.receive(dst, message)
                    to_self = True
                else:
                    self.transport.send(dst, message)
        if to_self and pump:
            self._pump()  # inside a pump, its loop polls again anyway


@attrs.frozen
class _Slot:
    """Where the answer to one call of a batch goes."""

    channel: trio.MemorySendChannel[tuple[int, Any]]
    index: int



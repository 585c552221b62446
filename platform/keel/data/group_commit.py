"""Group commit: many writers' records made durable by one transaction, one fsync.

Theory of operation. Writers hand their writes to `GroupCommitter.write`,
which queues them and waits. One task, `serve`, takes whatever is queued,
optionally waits `window` seconds for more, and commits it all in one
`RecordFile.write_batch` in a worker thread; while that fsync runs, new
writers queue up and go together in the next commit. So a lone writer
pays one fsync, and a crowd pays one fsync per commit, not per writer.
Each writer wakes only once its writes are durable, with the `Change`s
they made, in its own order.

Every batch's changes also go to `on_commit`, in commit order, the
moment they are durable: that is where the node keeps its hash trees in
step (`MerkleTree.update`), so a writer that stopped waiting (its deadline
passed, or it was cancelled) cannot leave a tree behind its records.

The high water of the hybrid clock is read when a commit starts: every
timestamp in the batch was issued before its writer queued it, so the
high water at that moment covers them all.

A commit that fails leaves the record file refusing writes
(`keel.data.records`): every writer in that batch and every later one gets
the `StorageError`, and `serve` raises it, taking the node's nursery down
with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs
import trio

from keel.data.records import Change, RecordFile, Write
from keel.errors import StorageError, Unavailable

__all__ = ["MAX_BATCH_WRITES", "QUEUE_DEPTH", "GroupCommitter"]

QUEUE_DEPTH = 1024  # writers waiting for the next commit; more wait to queue, under their own deadline
MAX_BATCH_WRITES = 4096  # writes per transaction; bounds one commit's memory and its fsync's size


@attrs.define
class _Waiting:
    writes: tuple[Write, ...]
    done: trio.Event = attrs.field(factory=trio.Event)
    changes: tuple[Change, ...] = ()
    error: StorageError | None = None


class GroupCommitter:
    """Gathers concurrent writers' writes into shared transactions on one `RecordFile`.

    Start `serve` in the nursery that owns the record file
    (`await nursery.start(committer.serve)`); cancel that nursery to stop.
    """

    def __init__(self, records: RecordFile, high_water: Callable[[], int], *,
                 on_commit: Callable[[tuple[Change, ...]], None] | None = None, window: float = 0.0,
                 max_batch: int = MAX_BATCH_WRITES, queue_depth: int = QUEUE_DEPTH) -> None:
        """Commit into `records`, persisting `high_water()` (the clock's) with every batch.

        `on_commit` is called with each batch's changes once durable, in
        the committer's task before any writer wakes: keep it quick and
        have it not raise. `window` (seconds) is how long a commit waits for
        more writers after the first one arrives; 0 gathers only those that
        queued while the previous commit ran, which is where batches come
        from under load.
        """
        if window < 0 or max_batch < 1 or queue_depth < 1:
            raise ValueError(f"window {window} must be >= 0, max_batch {max_batch} and queue_depth {queue_depth} >= 1")
        self.records = records
        self._high_water = high_water
        self._on_commit = on_commit
        self._window = window
        self._max_batch = max_batch
        self._send, self._receive = trio.open_memory_channel[_Waiting](queue_depth)
        self._failed: StorageError | None = None
        self.commits = 0  # transactions committed so far
        self.committed_writes = 0  # writes they held

    async def write(self, writes: Sequence[Write], *, timeout: float) -> tuple[Change, ...]:
        """Store `writes` in order and return once they are durable, with one `Change` per write.

        Raises:
            Unavailable: not durable within `timeout` seconds; the writes may
                still become durable later (do not acknowledge them).
            StorageError: the record file failed; nothing more will be stored.
        """
        waiting = _Waiting(tuple(writes))
        if not all(isinstance(w, Write) for w in waiting.writes):
            raise TypeError("GroupCommitter.write takes Write records")
        if self._failed is not None:
            raise self._failed
        with trio.move_on_after(timeout):
            await self._send.send(waiting)
            await waiting.done.wait()
        if not waiting.done.is_set():
            raise Unavailable(f"{self.records.path}: {len(waiting.writes)} writes not durable within {timeout:g} s")
        if waiting.error is not None:
            raise waiting.error
        return waiting.changes

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Commit queued writes until cancelled.

        Raises:
            StorageError: a commit failed; writers waiting got it too.
        """
        task_status.started()
        while True:
            batch = [await self._receive.receive()]
            if self._window > 0:
                await trio.sleep(self._window)
            size = len(batch[0].writes)
            while size < self._max_batch:
                try:
                    waiting = self._receive.receive_nowait()
                except trio.WouldBlock:
                    break
                batch.append(waiting)
                size += len(waiting.writes)
            await self._commit(batch)

    async def _commit(self, batch: list[_Waiting]) -> None:
        writes = [w for waiting in batch for w in waiting.writes]
        high_water = self._high_water()
        try:
            # abandon_on_cancel stays False: a cancelled commit still finishes, and its writers still learn of it.
            changes = await trio.to_thread.run_sync(self.records.write_batch, writes, high_water)
        except StorageError as exc:
            self._failed = exc
            for waiting in batch:
                waiting.error = exc
                waiting.done.set()
            self._fail_queued(exc)
            raise
        self.commits += 1
        self.committed_writes += len(writes)
        if self._on_commit is not None:
            self._on_commit(changes)
        start = 0
        for waiting in batch:
            waiting.changes = changes[start : start + len(waiting.writes)]
            start += len(waiting.writes)
            waiting.done.set()

    def _fail_queued(self, exc: StorageError) -> None:
        while True:
            try:
                waiting = self._receive.receive_nowait()
            except trio.WouldBlock:
                return
            waiting.error = exc
            waiting.done.set()

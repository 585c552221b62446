"""Group commit: concurrent writers share transactions and wake only once their writes are durable.

The clock is a MockClock that only moves when a test moves it (or, where
a test wants a deadline to pass, jumps when every task is blocked); commits
run in real worker threads, held at a gate where a test needs them held.
"""

from __future__ import annotations

import functools
import threading

import pytest
import trio
import trio.testing

from keel.data.group_commit import GroupCommitter
from keel.data.records import RecordFile, Write
from keel.errors import StorageError, Unavailable

from .files import BUCKET, NODE, puts

LONG = 1e6  # seconds; a deadline the frozen clock never reaches


class GatedRecords:
    """A record file whose commits wait at a gate the test opens, and that remembers each batch's size."""

    def __init__(self, records: RecordFile, *, closed_from: int = 0) -> None:
        self.records = records
        self.path = records.path
        self.batches: list[int] = []
        self.gate = threading.Event()
        self._closed_from = closed_from  # commits before this one pass without waiting

    def write_batch(self, writes, high_water):
        if len(self.batches) >= self._closed_from:
            assert self.gate.wait(timeout=30), "the test never opened the gate"
        self.batches.append(len(writes))
        return self.records.write_batch(writes, high_water)


class FailingRecords:
    """A record file whose disk fails: its first commit waits at a gate, then every commit fails."""

    def __init__(self, path):
        self.path = path
        self.gate = threading.Event()

    def write_batch(self, writes, high_water):
        assert self.gate.wait(timeout=30), "the test never opened the gate"
        raise StorageError(f"{self.path}: cannot write records: disk I/O error")


async def test_writers_that_queue_during_a_commit_share_the_next_one(tmp_path, mock_clock):
    results, reported = {}, []
    with RecordFile.open(tmp_path / "r.db", NODE) as file:
        records = GatedRecords(file)
        committer = GroupCommitter(records, lambda: 42, on_commit=reported.append)

        async def writer(i):
            results[i] = await committer.write(puts(0, range(i * 10, i * 10 + 3)), timeout=LONG)

        async with trio.open_nursery() as nursery:
            await nursery.start(committer.serve)
            nursery.start_soon(writer, 0)
            await trio.testing.wait_all_tasks_blocked()  # writer 0's commit is at the gate
            for i in range(1, 10):
                nursery.start_soon(writer, i)
            await trio.testing.wait_all_tasks_blocked()
            assert results == {}
            records.gate.set()
            while len(results) < 10:
                await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        assert records.batches == [3, 27]
        assert (committer.commits, committer.committed_writes) == (2, 30)
        for i, changes in results.items():
            assert [c.key for c in changes] == [b"k%d" % k for k in range(i * 10, i * 10 + 3)]
        assert [len(batch) for batch in reported] == [3, 27]
        assert {c for batch in reported for c in batch} == {c for cs in results.values() for c in cs}
    with RecordFile.open(tmp_path / "r.db", NODE) as reopened:
        assert reopened.count() == 30 and reopened.high_water == 42


async def test_a_writer_returns_only_once_its_writes_are_durable(tmp_path, mock_clock):
    path = tmp_path / "r.db"
    done = trio.Event()
    with RecordFile.open(path, NODE) as file:
        records = GatedRecords(file)
        committer = GroupCommitter(records, lambda: 7)

        async def writer():
            await committer.write([Write(BUCKET, 0, b"k", b"v")], timeout=LONG)
            assert file.get(BUCKET, 0, b"k") == b"v"  # on disk before the writer hears of it
            done.set()

        async with trio.open_nursery() as nursery:
            await nursery.start(committer.serve)
            nursery.start_soon(writer)
            await trio.testing.wait_all_tasks_blocked()
            assert not done.is_set() and file.get(BUCKET, 0, b"k") is None
            records.gate.set()
            await done.wait()
            nursery.cancel_scope.cancel()


async def test_a_window_gathers_writers_that_arrive_within_it(tmp_path, mock_clock):
    with RecordFile.open(tmp_path / "r.db", NODE) as file:
        records = GatedRecords(file)
        records.gate.set()
        committer = GroupCommitter(records, lambda: 1, window=0.010)
        async with trio.open_nursery() as nursery:
            await nursery.start(committer.serve)
            nursery.start_soon(functools.partial(committer.write, puts(0, range(2)), timeout=LONG))
            await trio.testing.wait_all_tasks_blocked()
            mock_clock.jump(0.005)
            nursery.start_soon(functools.partial(committer.write, puts(0, range(2, 5)), timeout=LONG))
            await trio.testing.wait_all_tasks_blocked()
            assert records.batches == []  # the window is still open
            mock_clock.jump(0.005)
            while file.count() < 5:
                await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        assert records.batches == [5]


async def test_a_batch_stops_growing_at_max_batch(tmp_path, mock_clock):
    with RecordFile.open(tmp_path / "r.db", NODE) as file:
        records = GatedRecords(file)
        committer = GroupCommitter(records, lambda: 1, max_batch=4)
        async with trio.open_nursery() as nursery:
            await nursery.start(committer.serve)
            for i in range(8):
                nursery.start_soon(functools.partial(committer.write, puts(0, range(i * 3, i * 3 + 3)), timeout=LONG))
                await trio.testing.wait_all_tasks_blocked()
            records.gate.set()
            while committer.committed_writes < 24:
                await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        # Whole writers only: a batch takes writers until it holds max_batch writes or more.
        assert records.batches == [3, 6, 6, 6, 3]


async def test_a_writer_not_durable_by_its_deadline_gets_unavailable(tmp_path, autojump_clock):
    with RecordFile.open(tmp_path / "r.db", NODE) as file:
        records = GatedRecords(file)
        reported = []
        committer = GroupCommitter(records, lambda: 1, on_commit=reported.append)
        async with trio.open_nursery() as nursery:
            await nursery.start(committer.serve)
            with pytest.raises(Unavailable, match=r"r\.db: 1 writes not durable within 2 s"):
                await committer.write(puts(0, range(1)), timeout=2)
            records.gate.set()  # the commit still completes; the writer is not told, on_commit is
            while not reported:
                await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        assert file.count() == 1
        assert [c.key for batch in reported for c in batch] == [b"k0"]


async def test_a_failed_commit_fails_its_writers_queued_writers_later_writers_and_serve(tmp_path, mock_clock):
    records = FailingRecords(tmp_path / "r.db")
    committer = GroupCommitter(records, lambda: 1)
    errors = []

    async def writer():
        try:
            await committer.write(puts(0, range(1)), timeout=LONG)
        except StorageError as exc:
            errors.append(exc)

    with pytest.RaisesGroup(pytest.RaisesExc(StorageError, match="disk I/O error")):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            nursery.start_soon(writer)
            await trio.testing.wait_all_tasks_blocked()  # both queued before the committer runs: one batch
            await nursery.start(committer.serve)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(writer)  # queues while that batch's commit is at the gate
            await trio.testing.wait_all_tasks_blocked()
            records.gate.set()
            await trio.sleep_forever()  # until serve's failure cancels the nursery
    assert len(errors) == 3
    mock_clock.autojump_threshold = 0  # a writer that waited would now time out instead
    with pytest.raises(StorageError, match="disk I/O error"):
        await committer.write(puts(0, range(1)), timeout=1)

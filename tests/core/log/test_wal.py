"""The durable log: what survives a restart, rotation, compaction, and misuse."""

from __future__ import annotations

import shutil
import threading

import pytest

from keel.consensus.log_ops import Append, CompactTo, Entry, EntryKind, SaveStable, SnapshotMeta, TruncateFrom
from keel.core.log import DurableLog
from keel.errors import StorageError

from .logs import entries, fold, reopen, segment_files, written


def test_an_empty_directory_opens_as_a_first_boot(tmp_path):
    directory = tmp_path / "new" / "wal"
    assert reopen(directory) == fold([])
    assert [p.name for p in segment_files(directory)] == ["segment-00000000000000000001.wal"]


def test_writes_are_durable_only_once_sync_returns(tmp_path):
    live, before, after = tmp_path / "live", tmp_path / "before", tmp_path / "after"
    synced = [SaveStable(b"term 1"), Append(entries(1, 2))]
    pending = [SaveStable(b"term 2"), Append(entries(3, 2, term=2))]
    with DurableLog.open(live) as log:
        log.write(synced)
        log.sync()
        log.write(pending)
        shutil.copytree(live, before)  # a crash now: the disk holds what the last sync covered
        log.sync()
        shutil.copytree(live, after)
    assert reopen(before) == fold(synced)
    assert reopen(after) == fold(synced + pending)


def test_closing_without_sync_drops_unsynced_writes_as_a_crash_would(tmp_path):
    with DurableLog.open(tmp_path) as log:
        log.write([Append(entries(1, 1))])
        log.sync()
        log.write([Append(entries(2, 1))])
    assert reopen(tmp_path) == fold([Append(entries(1, 1))])


def test_the_last_stable_state_survives_restart(tmp_path):
    ops = [SaveStable(b"term 1, no vote"), SaveStable(b"term 2, voted a"), Append(entries(1, 1, term=2))]
    written(tmp_path, [ops[:1], ops[1:]])
    assert reopen(tmp_path).stable == b"term 2, voted a"


def test_stable_state_survives_the_deletion_of_the_segment_that_held_it(tmp_path):
    ops = [[SaveStable(b"term 5, voted c")], [Append(entries(1, 10, term=5))], [CompactTo(SnapshotMeta(10, 5))]]
    written(tmp_path, ops, segment_bytes=1)
    assert segment_files(tmp_path)[0].name != "segment-00000000000000000001.wal"
    assert reopen(tmp_path, segment_bytes=1) == fold([op for batch in ops for op in batch])


def test_a_truncation_survives_restart_and_never_resurrects_entries(tmp_path):
    ops = [[Append(entries(1, 5, term=1))], [TruncateFrom(3), Append(entries(3, 1, term=2))]]
    written(tmp_path, ops, segment_bytes=1)
    recovered = reopen(tmp_path)
    assert [(e.index, e.term) for e in recovered.entries] == [(1, 1), (2, 1), (3, 2)]
    # A truncation into entries written in an earlier segment, then a compaction past it.
    with DurableLog.open(tmp_path, segment_bytes=1) as log:
        log.write([TruncateFrom(2)])
        log.sync()
        log.write([Append(entries(2, 3, term=3)), CompactTo(SnapshotMeta(2, 3))])
        log.sync()
    assert reopen(tmp_path) == fold([op for batch in ops for op in batch]
                                    + [TruncateFrom(2), Append(entries(2, 3, term=3)), CompactTo(SnapshotMeta(2, 3))])


def test_segments_rotate_once_they_reach_segment_bytes(tmp_path):
    batches = [[Append(entries(i, 1, size=100))] for i in range(1, 21)]
    written(tmp_path, batches, segment_bytes=300)
    files = segment_files(tmp_path)
    assert len(files) > 5
    assert all(f.stat().st_size >= 300 for f in files[:-1])
    assert [int(f.stem.split("-")[1]) for f in files] == list(range(1, len(files) + 1))
    assert reopen(tmp_path, segment_bytes=300) == fold([op for batch in batches for op in batch])


def test_compaction_deletes_segments_below_the_snapshot_once_it_is_durable(tmp_path):
    batches = [[Append(entries(i, 1, size=100))] for i in range(1, 21)]
    written(tmp_path, batches, segment_bytes=300)
    before = segment_files(tmp_path)
    with DurableLog.open(tmp_path, segment_bytes=300) as log:
        log.write([CompactTo(SnapshotMeta(15, 1))])
        assert segment_files(tmp_path) == before, "nothing goes before the snapshot is durable"
        log.sync()
        after = segment_files(tmp_path)
    assert before[-1] in after and len(after) < len(before) - 2
    recovered = reopen(tmp_path)
    assert recovered == fold([op for batch in batches for op in batch] + [CompactTo(SnapshotMeta(15, 1))])
    assert [e.index for e in recovered.entries] == list(range(16, 21))


def test_compaction_keeps_segments_holding_entries_above_the_snapshot(tmp_path):
    batches = [[Append(entries(1, 10))], [Append(entries(11, 10))]]
    written(tmp_path, batches, segment_bytes=1)
    before = segment_files(tmp_path)
    with DurableLog.open(tmp_path, segment_bytes=1) as log:
        log.write([CompactTo(SnapshotMeta(5, 1))])
        log.sync()
    assert segment_files(tmp_path)[0] == before[0], "entries 6..10 still live in the first segment"


def test_a_snapshot_from_another_history_replaces_the_whole_log(tmp_path):
    ops = [Append(entries(1, 6, term=1)), CompactTo(SnapshotMeta(4, 2)), Append(entries(5, 1, term=2))]
    written(tmp_path, [ops[:1], ops[1:]], segment_bytes=1)
    recovered = reopen(tmp_path)
    assert recovered == fold(ops)
    assert [(e.index, e.term) for e in recovered.entries] == [(5, 2)]


def test_an_older_snapshot_changes_nothing(tmp_path):
    ops = [Append(entries(1, 6)), CompactTo(SnapshotMeta(4, 1)), CompactTo(SnapshotMeta(2, 1))]
    written(tmp_path, [ops])
    assert reopen(tmp_path) == fold(ops)


def test_an_append_larger_than_a_record_is_split_and_comes_back_whole(tmp_path):
    ops = [Append(entries(1, 40, size=50))]
    written(tmp_path, [ops], max_record=300)
    assert reopen(tmp_path, max_record=300) == fold(ops)


def test_an_entry_larger_than_a_record_is_refused(tmp_path):
    with DurableLog.open(tmp_path, max_record=100) as log, pytest.raises(ValueError, match="entry 1 encodes to"):
        log.write([Append(entries(1, 1, size=200))])


def test_a_second_open_of_the_same_directory_is_refused(tmp_path):
    with DurableLog.open(tmp_path):
        with pytest.raises(StorageError, match="the log is open elsewhere"):
            DurableLog.open(tmp_path)
    assert reopen(tmp_path) == fold([])


def test_a_replacing_append_is_one_record_that_survives_a_restart(tmp_path):
    ops = [Append(entries(1, 5)), Append(entries(3, 1, term=2) + entries(4, 2))]
    with DurableLog.open(tmp_path) as log:
        log.write(ops)
        log.sync()
    recovered = reopen(tmp_path)
    assert recovered == fold(ops)
    assert [e.term for e in recovered.entries] == [1, 1, 2, 1, 1]


def test_a_compaction_asked_to_keep_the_suffix_keeps_it_across_a_restart(tmp_path):
    ops = [Append(entries(1, 5, term=1)), CompactTo(SnapshotMeta(3, 7), keep_suffix=True)]
    with DurableLog.open(tmp_path) as log:
        log.write(ops)
        log.sync()
    recovered = reopen(tmp_path)
    assert recovered == fold(ops)
    assert [e.index for e in recovered.entries] == [4, 5]
    assert fold(ops[:1] + [CompactTo(SnapshotMeta(3, 7))]).entries == ()  # without it: a different history


def test_an_append_replacing_entries_below_the_snapshot_is_refused(tmp_path):
    with DurableLog.open(tmp_path) as log:
        log.write([Append(entries(1, 4)), CompactTo(SnapshotMeta(2, 1))])
        with pytest.raises(ValueError, match="replaces entries below the snapshot"):
            log.write([Append(entries(2, 1))])


def test_an_operation_breaking_the_log_rules_makes_the_log_refuse_further_use(tmp_path):
    with DurableLog.open(tmp_path) as log:
        log.write([Append(entries(1, 2))])
        log.sync()
        with pytest.raises(ValueError, match="does not follow"):
            log.write([Append(entries(3, 1)), Append(entries(7, 1))])
        with pytest.raises(ValueError, match="unusable after an earlier error"):
            log.write([Append(entries(3, 1))])
        with pytest.raises(ValueError, match="unusable after an earlier error"):
            log.sync()
    assert reopen(tmp_path) == fold([Append(entries(1, 2))])


def test_text_where_bytes_belong_is_refused_before_it_reaches_the_disk(tmp_path):
    with DurableLog.open(tmp_path) as log, pytest.raises(TypeError, match="entry 1 data must be bytes"):
        log.write([Append((Entry(1, 1, EntryKind.COMMAND, "text"),))])  # type: ignore[arg-type]
    assert reopen(tmp_path) == fold([])


def test_writes_made_while_a_sync_runs_in_another_thread_are_kept(tmp_path):
    ops = [Append(entries(i, 1)) for i in range(1, 401)]
    with DurableLog.open(tmp_path, segment_bytes=2000) as log:
        done = threading.Event()

        def keep_syncing() -> None:
            while not done.is_set():
                log.sync()

        syncer = threading.Thread(target=keep_syncing)
        syncer.start()
        try:
            for op in ops:
                log.write([op])
        finally:
            done.set()
            syncer.join()
        log.sync()
    assert reopen(tmp_path) == fold(ops)


def test_a_closed_log_refuses_calls_and_closes_twice(tmp_path):
    log = DurableLog.open(tmp_path)
    log.close()
    log.close()
    with pytest.raises(ValueError, match="closed"):
        log.write([SaveStable(b"x")])
    with pytest.raises(ValueError, match="closed"):
        log.sync()


def test_disk_bytes_follow_writes_rotation_and_compaction(tmp_path):
    """What `keel status` shows as the log's size, kept without asking the disk."""
    log = DurableLog.open(tmp_path, segment_bytes=300)
    for index in range(1, 30):
        log.write([Append((Entry(index, 1, EntryKind.COMMAND, b"x" * 40),))])
        log.sync()
        assert log.disk_bytes == sum(p.stat().st_size for p in log.segments())
    log.write([CompactTo(SnapshotMeta(index=25, term=1))])
    log.sync()
    assert log.disk_bytes == sum(p.stat().st_size for p in log.segments())
    log.close()

"""Replay from a checkpoint whose earlier segments are gone: missing entries until a snapshot covers them."""

from __future__ import annotations

import pytest

from keel.consensus.log_ops import Append, LogState, SaveStable, SnapshotMeta, TruncateFrom
from keel.core.log.replay import Replay
from keel.core.log.wal_ops import Checkpoint, Compacted
from keel.errors import StorageError

from .logs import entries, fold

HERE = "segment-7.wal: offset 24"


def started(last_index: int = 10, snapshot: SnapshotMeta | None = SnapshotMeta(4, 1)) -> Replay:
    """A replay starting at a checkpoint with entries 5..10 missing (their segments deleted)."""
    return Replay.start(Checkpoint(stable=b"s", snapshot=snapshot, last_index=last_index), HERE)


def test_a_snapshot_covering_the_missing_entries_finishes_the_replay():
    replay = started()
    replay.apply(Append(entries(11, 3)), HERE)
    replay.apply(Compacted(SnapshotMeta(11, 1), keep_suffix=True), HERE)
    assert replay.finish(HERE).recovered() == fold([Append(entries(12, 2))], _after(SnapshotMeta(11, 1)))


def test_a_snapshot_ending_among_the_missing_entries_keeps_the_rest_missing():
    replay = started()
    replay.apply(Append(entries(11, 2)), HERE)
    replay.apply(Compacted(SnapshotMeta(7, 1), keep_suffix=True), HERE)
    assert (replay.base, replay.last_index) == (10, 12)
    with pytest.raises(StorageError, match=f"^{HERE}: entries 8..10 are missing and no snapshot covers them$"):
        replay.finish(HERE)
    replay.apply(Compacted(SnapshotMeta(10, 1), keep_suffix=True), HERE)
    assert [e.index for e in replay.finish(HERE).entries] == [11, 12]


def test_a_truncation_into_the_missing_entries_leaves_fewer_missing():
    replay = started()
    replay.apply(Append(entries(11, 2)), HERE)
    replay.apply(TruncateFrom(6), HERE)
    replay.apply(Append(entries(6, 1, term=2)), HERE)
    assert (replay.base, replay.last_index) == (5, 6)
    replay.apply(Compacted(SnapshotMeta(5, 1), keep_suffix=True), HERE)
    assert [(e.index, e.term) for e in replay.finish(HERE).entries] == [(6, 2)]


def test_a_dropping_compaction_forgets_held_and_missing_entries_alike():
    replay = started()
    replay.apply(SaveStable(b"t"), HERE)
    replay.apply(Compacted(SnapshotMeta(8, 3), keep_suffix=False), HERE)
    assert replay.finish(HERE).recovered() == fold([], _after(SnapshotMeta(8, 3), stable=b"t"))


@pytest.mark.parametrize(
    ("record", "rule"),
    [
        (Append(entries(12, 1)), "entry 12 does not follow 10"),
        (TruncateFrom(4), "truncation from 4 reaches into the snapshot"),
        (Compacted(SnapshotMeta(3, 1), keep_suffix=False), "snapshot 3 does not move past 4"),
        (Compacted(SnapshotMeta(10, 1), keep_suffix=True), "snapshot 10 keeps entries past the last one"),
        (Checkpoint(stable=b"", snapshot=None, last_index=0), "a checkpoint in the middle of a segment"),
        (SnapshotMeta(5, 1), "SnapshotMeta has no place in a log segment"),
    ],
)
def test_a_record_breaking_the_rules_is_corruption(record, rule):
    with pytest.raises(StorageError, match=f"^{HERE}: {rule}"):
        started().apply(record, HERE)


def test_a_kept_suffix_must_follow_the_snapshot_term_where_the_entry_is_held():
    replay = started()
    replay.apply(Append(entries(11, 2, term=2)), HERE)
    with pytest.raises(StorageError, match="snapshot 11 has term 1, the entry there has 2"):
        replay.apply(Compacted(SnapshotMeta(11, 1), keep_suffix=True), HERE)


def test_a_suffix_kept_on_the_engines_request_needs_no_matching_term():
    replay = started()
    replay.apply(Append(entries(11, 2, term=2)), HERE)
    replay.apply(Compacted(SnapshotMeta(11, 1), keep_suffix=True, forced=True), HERE)
    assert [e.index for e in replay.finish(HERE).entries] == [12]


def test_a_later_checkpoint_must_agree_with_the_fold():
    replay = started()
    replay.check(Checkpoint(stable=b"s", snapshot=SnapshotMeta(4, 1), last_index=10), HERE)
    with pytest.raises(StorageError, match="disagrees with the segments before it"):
        replay.check(Checkpoint(stable=b"other", snapshot=SnapshotMeta(4, 1), last_index=10), HERE)


def _after(snapshot: SnapshotMeta, stable: bytes = b"s") -> LogState:
    """The state a fold starts from right after `snapshot`."""
    return LogState(stable=stable, snapshot=snapshot)

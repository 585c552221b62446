"""Replay: folding the records found on disk back into a `LogState`.

The fold follows `LogState`'s rules (`keel.consensus.log_ops`), with one
difference: it may start at a segment whose earlier segments were deleted.
It then starts from that segment's `Checkpoint`, and the entries that were
live at that point (after the snapshot, up to the checkpoint's last index)
are *missing*: their index is known, their content is not. That is sound
because the writer deletes segments only once a durable snapshot covers
every entry the next segment's checkpoint leaves missing, and snapshots
only move forward; so by the end of a correct log the snapshot has covered
them again, and `finish` refuses a log where it has not.

Missing entries change nothing the fold computes: appends continue from the
last index, truncation is arithmetic on indexes, and a compaction follows
the outcome the writer recorded in `Compacted` instead of comparing terms.

Every inconsistency raises `StorageError` naming the record (`where`): a log
written by this code never breaks these rules, so one that does is damaged.
"""

from __future__ import annotations

import attrs

from keel.consensus.log_ops import Append, Entry, LogState, SaveStable, SnapshotMeta, TruncateFrom
from keel.core.log.wal_ops import Checkpoint, Compacted
from keel.errors import StorageError

__all__ = ["Replay"]


@attrs.define
class Replay:
    """The state folded so far; `entries` hold indexes `base + 1` onwards."""

    stable: bytes
    snapshot: SnapshotMeta | None
    base: int  # entries up to here are not held: covered by the snapshot, or missing above it
    entries: list[Entry] = attrs.Factory(list)

    @classmethod
    def start(cls, checkpoint: Checkpoint, where: str) -> Replay:
        """Begin at a segment's checkpoint, knowing nothing of the segments before it."""
        if checkpoint.last_index < _index(checkpoint.snapshot):
            raise StorageError(f"{where}: checkpoint's last index {checkpoint.last_index} is below its snapshot")
        return cls(stable=checkpoint.stable, snapshot=checkpoint.snapshot, base=checkpoint.last_index)

    @property
    def last_index(self) -> int:
        return self.base + len(self.entries)

    def check(self, checkpoint: Checkpoint, where: str) -> None:
        """A later segment's checkpoint must agree with what the earlier segments folded to."""
        ours = (self.stable, self.snapshot, self.last_index)
        theirs = (checkpoint.stable, checkpoint.snapshot, checkpoint.last_index)
        if ours != theirs:
            raise StorageError(
                f"{where}: checkpoint (last index {checkpoint.last_index}, snapshot {_index(checkpoint.snapshot)}) "
                f"disagrees with the segments before it (last index {self.last_index}, snapshot {_index(self.snapshot)})"
            )

    def apply(self, record: object, where: str) -> None:
        """Fold one record (anything but a segment's opening checkpoint)."""
        if isinstance(record, SaveStable):
            self.stable = record.state
        elif isinstance(record, Append):
            self._append(record, where)
        elif isinstance(record, TruncateFrom):
            self._truncate(record.index, where)
        elif isinstance(record, Compacted):
            self._compact(record, where)
        elif isinstance(record, Checkpoint):
            raise StorageError(f"{where}: a checkpoint in the middle of a segment")
        else:
            raise StorageError(f"{where}: {type(record).__name__} has no place in a log segment")

    def finish(self, where: str) -> LogState:
        """The state a correct log folds to: no entry above the snapshot missing.

        Raises:
            StorageError: entries are missing that no snapshot covers (a segment
                was deleted too early, or lost).
        """
        covered = _index(self.snapshot)
        if self.base > covered:
            raise StorageError(
                f"{where}: entries {covered + 1}..{self.base} are missing and no snapshot covers them"
            )
        return LogState(stable=self.stable, snapshot=self.snapshot, entries=self.entries)

    def _append(self, record: Append, where: str) -> None:
        if record.entries and record.entries[0].index <= self.last_index:
            self._truncate(record.entries[0].index, where)  # a replacing append (contract 1.2), one record
        for entry in record.entries:
            if entry.index != self.last_index + 1:
                raise StorageError(f"{where}: entry {entry.index} does not follow {self.last_index}")
            self.entries.append(entry)

    def _truncate(self, index: int, where: str) -> None:
        if index <= _index(self.snapshot):
            raise StorageError(f"{where}: truncation from {index} reaches into the snapshot ({_index(self.snapshot)})")
        if index > self.base:
            del self.entries[index - self.base - 1 :]
        else:  # into the missing entries: everything held goes, and fewer are missing
            self.entries.clear()
            self.base = index - 1

    def _compact(self, record: Compacted, where: str) -> None:
        meta = record.snapshot
        if self.snapshot is not None and meta.index <= self.snapshot.index:  # LogState ignores these; the writer skips them
            raise StorageError(f"{where}: snapshot {meta.index} does not move past {_index(self.snapshot)}")
        if not record.keep_suffix:
            self.entries.clear()
            self.base = meta.index
        elif meta.index >= self.last_index:
            raise StorageError(f"{where}: snapshot {meta.index} keeps entries past the last one ({self.last_index})")
        elif meta.index > self.base:
            # The entry at the snapshot's index is held: check it, as LogState would.
            at = meta.index - self.base - 1
            if self.entries[at].term != meta.term and not record.forced:
                raise StorageError(
                    f"{where}: snapshot {meta.index} has term {meta.term}, the entry there has {self.entries[at].term}"
                )
            del self.entries[: at + 1]
            self.base = meta.index
        # Otherwise the snapshot ends among the missing entries; those up to it
        # are now covered by it, and the rest stay missing.
        self.snapshot = meta


def _index(snapshot: SnapshotMeta | None) -> int:
    return snapshot.index if snapshot is not None else 0

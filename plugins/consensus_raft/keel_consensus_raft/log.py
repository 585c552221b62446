"""The engine's in-memory view of its log: keel's `EntryLog` with Raft's log-matching rules.

Theory of operation. `keel.consensus.EntryLog` keeps the view in step with
what the driver persists. Raft adds what §5.3 and §5.4 need: terms never go
down along the log (checked on recovery), the up-to-date comparison of the
election restriction, the conflict hint that skips a whole term per round
trip, and truncation of a conflicting suffix. The term of the snapshot's
last entry stays known, which is all the log-matching check at the snapshot
boundary needs.
"""

from __future__ import annotations

from collections.abc import Callable

from keel.consensus import NO_SNAPSHOT, EntryLog, LogOp, Recovered, SnapshotMeta, TruncateFrom
from keel.errors import StorageError

__all__ = ["NO_SNAPSHOT", "RaftLog"]


class RaftLog(EntryLog):
    """Entries after a snapshot point; every change is also handed to `persist`."""

    name = "raft log"

    def __init__(self, recovered: Recovered, persist: Callable[[LogOp], None]) -> None:
        """Rebuild the view from what survived.

        Raises:
            StorageError: the recovered entries do not follow the snapshot
                one by one, or their terms go down.
        """
        super().__init__(recovered, persist)
        previous = recovered.snapshot.term if recovered.snapshot else 0
        for entry in recovered.entries:
            if entry.term < previous:
                raise StorageError(f"raft log: entry {entry.index} has term {entry.term}, below {previous} before it")
            previous = entry.term
        self.truncations = 0  # times a suffix was removed; lets checkers notice a rewritten log cheaply

    def up_to_date(self, last_index: int, last_term: int) -> bool:
        """Whether a log ending at (last_index, last_term) is at least as up to date as this one (§5.4.1)."""
        return (last_term, last_index) >= (self.last_term, self.last_index)

    def conflict_hint(self, index: int, term: int) -> int:
        """The highest kept index at or below `index` whose term is at most `term`.

        Used both ways round to skip over a conflicting term at once: a
        follower finds where the leader's (index, term) may still agree with
        its log, and the leader finds where its own log may agree with the
        follower's hint. Stops at the snapshot, whose entries are committed
        and so agree everywhere.
        """
        index = min(index, self.last_index)
        while index > self.snapshot.index:
            found = self.term_at(index)
            if found is not None and found <= term:
                break
            index -= 1
        return index

    def truncate_from(self, index: int) -> None:
        """Remove the entry at `index` and every later one."""
        if index <= self.last_index:
            self.truncations += 1
            self.apply(TruncateFrom(index))

    def compact_to(self, meta: SnapshotMeta, *, keep_suffix: bool = False) -> None:
        """Let the snapshot `meta` stand for every entry up to its index."""
        if meta.index > self.snapshot.index:
            kept = keep_suffix or self.term_at(meta.index) == meta.term
            if not kept and self.last_index > self.snapshot.index:
                self.truncations += 1  # the snapshot replaces every entry kept, not only those it covers
            super().compact_to(meta, keep_suffix=keep_suffix)

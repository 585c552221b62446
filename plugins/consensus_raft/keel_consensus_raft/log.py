"""The engine's in-memory view of its log: a snapshot point and the entries after it.

Theory of operation. The view changes only through the same `LogOp`
records the engine hands the driver to persist, folded by the host's own
`LogState`; so what the engine believes its log is and what the driver
writes can never drift apart. Every change goes through `apply`, which
folds the op and passes it on to be persisted.

Indexes start at 1. The snapshot stands for every entry up to its index
(index 0, term 0 when there is none); entries kept start right after it.
The term of the snapshot's last entry stays known, which is all that the
log-matching check at the snapshot boundary needs.
"""

from __future__ import annotations

from collections.abc import Callable

from keel.consensus import Append, CompactTo, Entry, LogOp, LogState, Recovered, SnapshotMeta, TruncateFrom
from keel.errors import StorageError

__all__ = ["NO_SNAPSHOT", "RaftLog"]

NO_SNAPSHOT = SnapshotMeta(index=0, term=0)


class RaftLog:
    """Entries after a snapshot point; every change is also handed to `persist`."""

    def __init__(self, recovered: Recovered, persist: Callable[[LogOp], None]) -> None:
        """Rebuild the view from what survived.

        Raises:
            StorageError: the recovered entries do not follow the snapshot
                one by one, or their terms go down.
        """
        first = (recovered.snapshot.index if recovered.snapshot else 0) + 1
        previous = recovered.snapshot.term if recovered.snapshot else 0
        for offset, entry in enumerate(recovered.entries):
            if entry.index != first + offset:
                raise StorageError(f"raft log: entry {entry.index} found where {first + offset} belongs")
            if entry.term < previous:
                raise StorageError(f"raft log: entry {entry.index} has term {entry.term}, below {previous} before it")
            previous = entry.term
        self._state = LogState(snapshot=recovered.snapshot, entries=list(recovered.entries))
        self._persist = persist
        self.truncations = 0  # times a suffix was removed; lets checkers notice a rewritten log cheaply

    # --- reading -------------------------------------------------------------

    @property
    def snapshot(self) -> SnapshotMeta:
        return self._state.snapshot or NO_SNAPSHOT

    @property
    def first_index(self) -> int:
        """Index of the first entry kept (one past the snapshot)."""
        return self._state.first_index

    @property
    def last_index(self) -> int:
        return self._state.last_index

    @property
    def last_term(self) -> int:
        entries = self._state.entries
        return entries[-1].term if entries else self.snapshot.term

    def term_at(self, index: int) -> int | None:
        """The term of the entry at `index`, or None when it is compacted away or not there yet."""
        if index == self.snapshot.index:
            return self.snapshot.term
        if self.first_index <= index <= self.last_index:
            return self._state.entries[index - self.first_index].term
        return None

    def entry(self, index: int) -> Entry:
        """The entry at `index`, which must be kept (first_index .. last_index)."""
        if not self.first_index <= index <= self.last_index:
            raise IndexError(f"raft log: entry {index} is outside {self.first_index}..{self.last_index}")
        return self._state.entries[index - self.first_index]

    def between(self, low: int, high: int) -> tuple[Entry, ...]:
        """Entries low..high inclusive, all of which must be kept."""
        if low > high:
            return ()
        if low < self.first_index or high > self.last_index:
            raise IndexError(f"raft log: {low}..{high} is outside {self.first_index}..{self.last_index}")
        start = low - self.first_index
        return tuple(self._state.entries[start : start + high - low + 1])

    def batch(self, low: int, max_entries: int, max_bytes: int) -> tuple[Entry, ...]:
        """Entries from `low` on, at most `max_entries` and `max_bytes` of data, but at least one if any."""
        out: list[Entry] = []
        size = 0
        index = low
        while index <= self.last_index and len(out) < max_entries:
            entry = self.entry(index)
            if out and size + len(entry.data) > max_bytes:
                break
            out.append(entry)
            size += len(entry.data)
            index += 1
        return tuple(out)

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

    # --- changing (each change is persisted too) -----------------------------

    def append(self, entries: tuple[Entry, ...]) -> None:
        """Add entries that follow the last one."""
        if entries:
            self.apply(Append(entries))

    def truncate_from(self, index: int) -> None:
        """Remove the entry at `index` and every later one."""
        if index <= self.last_index:
            self.truncations += 1
            self.apply(TruncateFrom(index))

    def compact_to(self, meta: SnapshotMeta) -> None:
        """Let the snapshot `meta` stand for every entry up to its index."""
        if meta.index > self.snapshot.index:
            kept = self.term_at(meta.index) == meta.term
            if not kept and self.last_index > self.snapshot.index:
                self.truncations += 1  # the snapshot replaces every entry kept, not only those it covers
            self.apply(CompactTo(meta))

    def apply(self, op: LogOp) -> None:
        self._state.apply(op)
        self._persist(op)

"""EntryLog: an engine's in-memory view of its log, kept in step with what the driver persists.

Theory of operation. The view changes only through the same `LogOp`
records the engine hands the driver to persist, folded by the host's own
`LogState`; so what an engine believes its log is and what the driver
writes can never drift apart. Every change goes through `apply`, which
folds the op and passes it on to be persisted. Engines subclass it with
their own rules (Raft's log matching, a Paxos acceptor's overwrites).

Indexes start at 1. The snapshot stands for every entry up to its index
(index 0, term 0 when there is none); entries kept start right after it,
and the term of the snapshot's last entry stays known.
"""

from __future__ import annotations

from collections.abc import Callable

from keel.consensus.log_ops import Append, CompactTo, Entry, LogOp, LogState, Recovered, SnapshotMeta
from keel.errors import StorageError

__all__ = ["NO_SNAPSHOT", "EntryLog"]

NO_SNAPSHOT = SnapshotMeta(index=0, term=0)


class EntryLog:
    """Entries after a snapshot point; every change is also handed to `persist`."""

    name = "log"  # how errors name it: the engine's name

    def __init__(self, recovered: Recovered, persist: Callable[[LogOp], None]) -> None:
        """Rebuild the view from what survived.

        Raises:
            StorageError: the recovered entries do not follow the snapshot one by one.
        """
        first = (recovered.snapshot.index if recovered.snapshot else 0) + 1
        for offset, entry in enumerate(recovered.entries):
            if entry.index != first + offset:
                raise StorageError(f"{self.name}: entry {entry.index} found where {first + offset} belongs")
        self._state = LogState(snapshot=recovered.snapshot, entries=list(recovered.entries))
        self._persist = persist

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
            raise IndexError(f"{self.name}: entry {index} is outside {self.first_index}..{self.last_index}")
        return self._state.entries[index - self.first_index]

    def between(self, low: int, high: int) -> tuple[Entry, ...]:
        """Entries low..high inclusive, all of which must be kept."""
        if low > high:
            return ()
        if low < self.first_index or high > self.last_index:
            raise IndexError(f"{self.name}: {low}..{high} is outside {self.first_index}..{self.last_index}")
        start = low - self.first_index
        return tuple(self._state.entries[start : start + high - low + 1])

    def batch(self, low: int, max_entries: int, max_bytes: int) -> tuple[Entry, ...]:
        """Entries from `low` on, at most `max_entries` and `max_bytes` of data, but at least one if any."""
        out: list[Entry] = []
        size = 0
        index = low
        while index <= self.last_index and len(out) < max_entries:
            entry = self._state.entries[index - self.first_index]
            if out and size + len(entry.data) > max_bytes:
                break
            out.append(entry)
            size += len(entry.data)
            index += 1
        return tuple(out)

    def bytes_between(self, low: int, high: int) -> int:
        """Bytes of entry data in low..high, counting kept entries only."""
        low = max(low, self.first_index)
        return sum(len(e.data) for e in self._state.entries[low - self.first_index : high - self.first_index + 1])

    # --- changing (each change is persisted too) -----------------------------

    def append(self, entries: tuple[Entry, ...]) -> None:
        """Add entries that follow the last one."""
        if entries:
            self.apply(Append(entries))

    def compact_to(self, meta: SnapshotMeta, *, keep_suffix: bool = False) -> None:
        """Let the snapshot `meta` stand for every entry up to its index (see `CompactTo` for `keep_suffix`)."""
        if meta.index > self.snapshot.index:
            self.apply(CompactTo(meta, keep_suffix=keep_suffix))

    def apply(self, op: LogOp) -> None:
        self._state.apply(op)
        self._persist(op)

"""The acceptor's log: the value accepted at each slot, with the ballot it was accepted in.

Theory of operation. A Multi-Paxos acceptor keeps, per slot, the highest
ballot it accepted and that ballot's value (an `Entry` whose `term` is the
ballot). keel's log keeps entries contiguous from the snapshot on, so the
acceptor accepts a slot only right after ones it holds (see `acceptor`).
Overwriting a slot with a higher ballot's value must not lose the later
slots accepted meanwhile: `accept_run` writes the new run and the kept
suffix as one replacing `Append` (contract 1.2), a single durable record.

The view changes only through the `LogOp` records handed to the driver,
folded by the host's `LogState`, so the engine's log and the one on disk
never drift apart. Slots up to the engine's commit index hold chosen values.
"""

from __future__ import annotations

from collections.abc import Callable

from keel.consensus import Append, CompactTo, Entry, LogOp, LogState, Recovered, SnapshotMeta
from keel.errors import StorageError

__all__ = ["NO_SNAPSHOT", "AcceptorLog"]

NO_SNAPSHOT = SnapshotMeta(index=0, term=0)


class AcceptorLog:
    """Accepted entries after a snapshot point; every change is also handed to `persist`."""

    def __init__(self, recovered: Recovered, persist: Callable[[LogOp], None]) -> None:
        """Rebuild the view from what survived.

        Raises:
            StorageError: the recovered entries do not follow the snapshot one by one.
        """
        first = (recovered.snapshot.index if recovered.snapshot else 0) + 1
        for offset, entry in enumerate(recovered.entries):
            if entry.index != first + offset:
                raise StorageError(f"paxos log: entry {entry.index} found where {first + offset} belongs")
        self._state = LogState(snapshot=recovered.snapshot, entries=list(recovered.entries))
        self._persist = persist
        self.overwrites = 0  # slots whose accepted value a higher ballot replaced

    # --- reading -------------------------------------------------------------

    @property
    def snapshot(self) -> SnapshotMeta:
        return self._state.snapshot or NO_SNAPSHOT

    @property
    def first_index(self) -> int:
        return self._state.first_index

    @property
    def last_index(self) -> int:
        return self._state.last_index

    def term_at(self, index: int) -> int | None:
        """The ballot of the entry at `index`, or None when it is compacted away or not there."""
        if index == self.snapshot.index:
            return self.snapshot.term
        if self.first_index <= index <= self.last_index:
            return self._state.entries[index - self.first_index].term
        return None

    def entry(self, index: int) -> Entry:
        if not self.first_index <= index <= self.last_index:
            raise IndexError(f"paxos log: slot {index} is outside {self.first_index}..{self.last_index}")
        return self._state.entries[index - self.first_index]

    def between(self, low: int, high: int) -> tuple[Entry, ...]:
        """Entries low..high inclusive, all of which must be kept."""
        if low > high:
            return ()
        if low < self.first_index or high > self.last_index:
            raise IndexError(f"paxos log: {low}..{high} is outside {self.first_index}..{self.last_index}")
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
        """Bytes of entry data in low..high (kept entries only)."""
        low = max(low, self.first_index)
        return sum(len(e.data) for e in self._state.entries[low - self.first_index : high - self.first_index + 1])

    # --- changing (each change is persisted too) -----------------------------

    def append(self, entries: tuple[Entry, ...]) -> None:
        """Add entries that follow the last one."""
        if entries:
            self.apply(Append(entries))

    def accept_run(self, entries: tuple[Entry, ...]) -> int | None:
        """Hold `entries` (consecutive, the first at most one past the last held).

        Slots already holding the same entry stay as they are; from the first
        that differs on, the run replaces what is held, and the entries held
        after the run are kept, all in one replacing `Append`. Returns the
        first slot whose content changed, or None when none did.
        """
        if not entries:
            return None
        first = entries[0].index
        if first > self.last_index + 1 or first < self.first_index:
            raise ValueError(f"paxos log: a run from slot {first} does not fit {self.first_index}..{self.last_index}")
        skip = 0
        while skip < len(entries) and entries[skip].index <= self.last_index and \
                self.entry(entries[skip].index) == entries[skip]:
            skip += 1
        if skip == len(entries):
            return None
        run = entries[skip:]
        end = run[-1].index
        self.overwrites += max(0, min(end, self.last_index) - run[0].index + 1)
        self.apply(Append(run + self.between(end + 1, self.last_index)))
        return run[0].index

    def compact_to(self, meta: SnapshotMeta) -> None:
        """Let the snapshot `meta` stand for every entry up to its index."""
        if meta.index > self.snapshot.index:
            self.apply(CompactTo(meta))

    def apply(self, op: LogOp) -> None:
        self._state.apply(op)
        self._persist(op)

"""What a consensus engine asks the durable log to do, and what it gets back.

The engine never touches files. It returns `LogOp` records in `Ready.persist`;
the driver applies them in order to the durable log (`keel.core.log` on a
real node, a simulated disk in `keel.sim`) and makes them durable (fsync)
before any message of the same `Ready` leaves the node. After a restart the
driver folds what survived into a `Recovered` and hands it to the engine's
factory. Both drivers fold with `LogState`, so the simulator and a real node
agree on what a sequence of operations means.

Indexes start at 1. A snapshot at index i with term t stands for every
entry up to i; entries kept in the log then start at i + 1.
"""

from __future__ import annotations

import enum

import attrs

from keel.wire import message

__all__ = [
    "Append",
    "CompactTo",
    "Entry",
    "EntryKind",
    "LogOp",
    "LogState",
    "Recovered",
    "SaveStable",
    "SnapshotMeta",
    "TruncateFrom",
]


class EntryKind(enum.Enum):
    """What an entry carries; only COMMAND entries reach the state machine."""

    COMMAND = "command"  # a client command: opaque bytes for the state machine
    NOOP = "noop"  # written by a new leader to commit entries of earlier terms
    CONFIG = "config"  # a membership change: data is a cluster configuration the engine encodes


@attrs.frozen
class Entry:
    """One log entry. `term` is the term (Raft) or ballot (Paxos) that wrote it."""

    index: int
    term: int
    kind: EntryKind
    data: bytes = b""


@attrs.frozen
class SnapshotMeta:
    """Where a snapshot stands in the log, and the membership it includes."""

    index: int
    term: int
    config: bytes = b""  # the engine's encoded membership as of `index`


@message("log.stable")
@attrs.frozen
class SaveStable:
    """Replace the engine's stable state (term and vote, or promised ballot)."""

    state: bytes


@message("log.append")
@attrs.frozen
class Append:
    """Append entries; the first follows the last entry (or the snapshot) with no gap.

    Since contract 1.2 the first entry may also sit at or below the last
    one (above the snapshot): the entries from its index on are replaced
    by these, as one record, so a crash keeps either the old suffix or the
    new one and never a truncated log without the entries that replace it.
    A Paxos acceptor needs that to overwrite one slot's accepted value while
    keeping the later slots it accepted; `TruncateFrom` then `Append` would
    lose those later slots if the crash fell between the two records.
    """

    entries: tuple[Entry, ...]


@message("log.truncate")
@attrs.frozen
class TruncateFrom:
    """Delete the entry at `index` and every later one (a conflicting suffix)."""

    index: int


@message("log.compact")
@attrs.frozen
class CompactTo:
    """A snapshot now covers every entry up to `snapshot.index`: forget them.

    The driver has already stored the snapshot's data where it keeps
    snapshots; this record only moves the log's low-water mark.

    The entries after the snapshot's index stay if they continue its
    history (the entry at its index has its term). Since contract 1.2,
    `keep_suffix` keeps them whatever that entry is: a Paxos acceptor's
    later slots are acceptances of their own, not the continuation of one
    history, and forgetting one could lose a value a quorum chose.
    """

    snapshot: SnapshotMeta
    keep_suffix: bool = False


LogOp = SaveStable | Append | TruncateFrom | CompactTo


@attrs.frozen
class Recovered:
    """What an engine starts from: everything that was durable."""

    stable: bytes = b""  # empty on first boot
    snapshot: SnapshotMeta | None = None
    entries: tuple[Entry, ...] = ()  # contiguous, from snapshot.index + 1 (or 1)


@attrs.define
class LogState:
    """Folds log operations into the state they leave; the drivers' shared meaning.

    Raises ValueError on an operation that breaks the rules above (a gap, a
    truncation below the snapshot): that is a bug in the engine.
    """

    stable: bytes = b""
    snapshot: SnapshotMeta | None = None
    entries: list[Entry] = attrs.Factory(list)

    @property
    def first_index(self) -> int:
        """Index of the first entry kept (one past the snapshot)."""
        return (self.snapshot.index if self.snapshot else 0) + 1

    @property
    def last_index(self) -> int:
        return self.first_index + len(self.entries) - 1

    def apply(self, op: LogOp) -> None:
        if isinstance(op, SaveStable):
            self.stable = op.state
        elif isinstance(op, Append):
            if op.entries and op.entries[0].index <= self.last_index:
                first = op.entries[0].index
                if first < self.first_index:
                    raise ValueError(f"log append: entry {first} replaces entries below the snapshot "
                                     f"({self.first_index - 1})")
                del self.entries[first - self.first_index :]
            for entry in op.entries:
                if entry.index != self.last_index + 1:
                    raise ValueError(f"log append: entry {entry.index} does not follow {self.last_index}")
                self.entries.append(entry)
        elif isinstance(op, TruncateFrom):
            if op.index < self.first_index:
                raise ValueError(f"log truncate: {op.index} is below the snapshot ({self.first_index - 1})")
            del self.entries[op.index - self.first_index :]
        elif isinstance(op, CompactTo):
            meta = op.snapshot
            if self.snapshot is not None and meta.index <= self.snapshot.index:
                return  # an older snapshot than the one kept: nothing to forget
            at = meta.index - self.first_index  # position of the snapshot's last entry, if kept
            # Keep the suffix only if it continues the snapshot's history (same
            # entry at its index); a snapshot from a leader past or across our
            # log replaces all of it.
            if 0 <= at < len(self.entries) and (op.keep_suffix or self.entries[at].term == meta.term):
                kept = self.entries[at + 1 :]
            else:
                kept = []
            self.snapshot, self.entries = meta, kept
        else:
            raise TypeError(f"not a log operation: {type(op).__name__}")

    def recovered(self) -> Recovered:
        return Recovered(stable=self.stable, snapshot=self.snapshot, entries=tuple(self.entries))

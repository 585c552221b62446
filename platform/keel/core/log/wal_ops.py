"""The records the write-ahead log writes besides the engine's own operations.

Most records are the engine's `SaveStable`, `Append` and `TruncateFrom`,
encoded as they are. Two are the log's own:

- `Checkpoint` opens every segment with the state as of its start (stable
  state, snapshot, last index), so the segments before it can be deleted
  once a snapshot covers every entry they held, and a stable state saved
  long ago survives the deletion of the segment that held it.
- `Compacted` replaces the engine's `CompactTo`. Whether a compaction keeps
  the entries after the snapshot depends on the term of the entry at the
  snapshot's index, and that entry may sit in a segment that was deleted by
  the time the log is replayed. So the writer records the outcome it
  computed with `LogState`, and replay follows it instead of recomputing it.

They are registered wire messages, so the log encodes them with the same
canonical, type-checked codec as the engine's operations. Their tags live in
the `wal.` namespace; nothing ever sends them to a peer.
"""

from __future__ import annotations

import attrs

from keel.consensus.log_ops import SnapshotMeta
from keel.wire import message

__all__ = ["Checkpoint", "Compacted"]


@message("wal.checkpoint")
@attrs.frozen
class Checkpoint:
    """The log's state where a segment begins; the first record of every segment."""

    stable: bytes
    snapshot: SnapshotMeta | None
    last_index: int  # last entry written before this segment (the snapshot's index when none follow it)


@message("wal.compacted")
@attrs.frozen
class Compacted:
    """A `CompactTo` as the writer applied it: the new snapshot, and whether later entries stayed."""

    snapshot: SnapshotMeta
    keep_suffix: bool  # the entries after `snapshot.index` continue its history and stay
    forced: bool = False  # they stay because the engine asked (CompactTo.keep_suffix), whatever the term there

"""keel.core.log: the durable log every consensus plugin's driver writes through.

`DurableLog` keeps an engine's log operations (`keel.consensus.log_ops`) in
a write-ahead log of segmented, length-prefixed, CRC-checked records;
`SnapshotStore` keeps the state machine's snapshot that compaction relies on.

    log = DurableLog.open(directory / "wal")
    engine = factory(settings, log.recovered(), rng)
    ...
    log.write(ready.persist)                   # buffered: no system call
    await trio.to_thread.run_sync(log.sync)    # one fsync for every write so far
    # only now send ready.send

Both block on file I/O and never import Trio: the driver chooses the thread.
"""

from keel.core.log.record import MAX_RECORD
from keel.core.log.snapshot_store import SnapshotStore, StoredSnapshot
from keel.core.log.wal import DEFAULT_SEGMENT_BYTES, DurableLog, Taken

__all__ = ["DEFAULT_SEGMENT_BYTES", "MAX_RECORD", "DurableLog", "SnapshotStore", "StoredSnapshot", "Taken"]

"""Helpers shared by the durable log's tests: entries, folds, reopening, segment files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from keel.consensus.log_ops import Entry, EntryKind, LogOp, LogState, Recovered
from keel.core.log import DurableLog


def entries(first: int, count: int, *, term: int = 1, size: int = 8) -> tuple[Entry, ...]:
    """`count` command entries from index `first`, each carrying `size` bytes naming its index."""
    return tuple(
        Entry(index=i, term=term, kind=EntryKind.COMMAND, data=(b"%d:" % i).ljust(size, b"."))
        for i in range(first, first + count)
    )


def fold(ops: Iterable[LogOp], state: LogState | None = None) -> Recovered:
    """What `LogState` makes of `ops`: what recovery must give back once they are durable."""
    state = state if state is not None else LogState()
    for op in ops:
        state.apply(op)
    return state.recovered()


def reopen(directory: Path, **options: int) -> Recovered:
    """Open the log in `directory`, take what it recovered, close it again."""
    with DurableLog.open(directory, **options) as log:
        return log.recovered()


def segment_files(directory: Path) -> list[Path]:
    """The segment files in `directory`, oldest first."""
    return sorted(directory.glob("segment-*.wal"))


def written(directory: Path, batches: Iterable[Iterable[LogOp]], **options: int) -> list[int]:
    """Write and sync each batch into a fresh log; return the last segment's size after each sync."""
    sizes = []
    with DurableLog.open(directory, **options) as log:
        for batch in batches:
            log.write(batch)
            log.sync()
            sizes.append(log.segments()[-1].stat().st_size)
    return sizes

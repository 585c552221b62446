"""A node's simulated disk: an append-only list of records and how much of it is durable.

Writes land at once but are only *durable* once the fsync started for them
completes. One fsync runs per write batch, and they complete in the order
they started (a later one never finishes first), as on a single write-ahead
log. A crash keeps exactly the durable prefix and loses the rest; torn or
reordered writes are not modelled. Nothing is ever rewritten or truncated
by the node itself: compaction (`replace everything below index X`) is left
for when an engine needs snapshots.
"""

from __future__ import annotations

from typing import Any

import attrs

from keel.sim.payload import Payload

__all__ = ["Disk"]


@attrs.define
class Disk:
    """The records one node has written, across all its incarnations."""

    _written: list[Payload] = attrs.Factory(list)
    durable: int = 0  # records [0, durable) survive a crash
    sync_done_at: float = 0.0  # virtual time the latest fsync completes; the next completes no earlier

    def write(self, records: tuple[Payload, ...]) -> int:
        """Append records; return how many records an fsync must cover to make them durable."""
        self._written.extend(records)
        return len(self._written)

    def synced(self, upto: int) -> None:
        """An fsync covering the first `upto` records completed."""
        self.durable = max(self.durable, min(upto, len(self._written)))

    @property
    def written(self) -> int:
        """Records written, durable or not."""
        return len(self._written)

    @property
    def pending(self) -> int:
        """Records written but not yet durable."""
        return len(self._written) - self.durable

    def crash(self, now: float) -> int:
        """Lose every record that is not durable; return how many were lost."""
        lost = self.pending
        del self._written[self.durable :]
        self.sync_done_at = now
        return lost

    def durable_records(self) -> tuple[Any, ...]:
        """What a restart finds on disk: the durable records, freshly decoded."""
        return tuple(p.open() for p in self._written[: self.durable])

    def records(self) -> tuple[Any, ...]:
        """Every record written, durable or not, as the node handed them over."""
        return tuple(p.value for p in self._written)

"""ConfigHistory: which membership is in force, for engines that change it through CONFIG entries.

Theory of operation. A configuration travels as a CONFIG entry and takes
effect on a node as soon as the entry is in its log, committed or not: a
node always uses the latest configuration in its log (Raft thesis §4.1; a
Paxos acceptor's log likewise). Removing or overwriting a CONFIG entry
brings back the one before it, so the history keeps every CONFIG entry
after the snapshot, and the snapshot carries the configuration as of its
index (`SnapshotMeta.config`).

An engine subclasses it and names its configuration record in
`config_type`: a registered wire message with `voters` and `learners`
tuples and a `bootstrap(voters)` class method for a first boot.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from keel import wire
from keel.consensus.log_ops import Entry, EntryKind, SnapshotMeta
from keel.errors import WireError

__all__ = ["ConfigHistory"]


@attrs.define
class ConfigHistory:
    """The configuration as of the snapshot, plus every CONFIG entry after it."""

    config_type: ClassVar[type]

    base: Any
    base_index: int = 0  # the index the base stands at (the snapshot's), 0 for the bootstrap voters
    changes: list[tuple[int, Any]] = attrs.Factory(list)  # (index, config) ascending, all after base_index

    @classmethod
    def recover(cls, snapshot: SnapshotMeta | None, entries: tuple[Entry, ...], bootstrap: tuple[str, ...]) -> Any:
        """Rebuild from what survived: the snapshot's configuration, else the bootstrap voters.

        Raises:
            WireError: a configuration does not decode.
        """
        if snapshot is not None and snapshot.config:
            history = cls(wire.decode_as(snapshot.config, cls.config_type, "snapshot config"), snapshot.index)
        else:
            history = cls(cls.config_type.bootstrap(bootstrap), snapshot.index if snapshot else 0)
        history.appended(entries)
        return history

    @classmethod
    def readable(cls, entries: tuple[Entry, ...] = (), snapshot: SnapshotMeta | None = None) -> bool:
        """Whether every configuration in `entries` (and `snapshot`) decodes and, where the configuration
        type has a `well_formed()` check, passes it: a peer's message to refuse if not."""
        blobs = [e.data for e in entries if e.kind is EntryKind.CONFIG]
        if snapshot is not None and snapshot.config:
            blobs.append(snapshot.config)
        try:
            configs = [wire.decode_as(blob, cls.config_type, "config") for blob in blobs]
        except WireError:
            return False
        return all(getattr(config, "well_formed", lambda: True)() for config in configs)

    @property
    def config(self) -> Any:
        """The configuration in force: the latest one in the log."""
        return self.changes[-1][1] if self.changes else self.base

    @property
    def latest_index(self) -> int:
        """Index of the entry holding the configuration in force."""
        return self.changes[-1][0] if self.changes else self.base_index

    def is_voter(self, node: str) -> bool:
        return node in self.config.voters

    def config_at(self, index: int) -> Any:
        """The configuration in force once the log reached `index` (at or after the base)."""
        found = self.base
        for at, config in self.changes:
            if at > index:
                break
            found = config
        return found

    def appended(self, entries: tuple[Entry, ...]) -> None:
        """Entries joined the log after every one held: a CONFIG entry among them takes effect now."""
        for entry in entries:
            if entry.kind is EntryKind.CONFIG:
                config = wire.decode_as(entry.data, self.config_type, f"config entry {entry.index}")
                self.changes.append((entry.index, config))

    def truncated(self, index: int) -> None:
        """Entries from `index` on left the log: their configurations no longer apply."""
        self.changes = [(at, config) for at, config in self.changes if at < index]

    def rewritten(self, index: int, entries: tuple[Entry, ...]) -> None:
        """The entries from `index` on were replaced by `entries` (a replacing `Append`)."""
        self.truncated(index)
        self.appended(entries)

    def compacted(self, meta: SnapshotMeta, last_index: int) -> None:
        """The log now starts after snapshot `meta` and ends at `last_index`."""
        if meta.index <= self.base_index:
            return
        self.base = wire.decode_as(meta.config, self.config_type, "snapshot config") if meta.config \
            else self.config_at(meta.index)
        self.base_index = meta.index
        self.changes = [(at, config) for at, config in self.changes if meta.index < at <= last_index]

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
tuples and `members` (both, sorted), a `bootstrap(voters)` class method for
a first boot, and `changed(voters, learners)` for the configuration a
one-node change makes of it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from keel import wire
from keel.consensus.engine import MembershipChange
from keel.consensus.log_ops import Entry, EntryKind, SnapshotMeta
from keel.errors import KeelError, WireError

__all__ = ["ACTIONS", "ConfigHistory"]

ACTIONS = ("add_learner", "promote", "remove")


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

    def proposed(self, change: MembershipChange, caught_up: bool) -> Any:
        """The configuration that `change` would make of the one in force.

        Args:
            change: the one-node change asked for.
            caught_up: for a promotion, whether the learner's log is close
                enough to the leader's.

        Raises:
            KeelError: the action is unknown, or it does not apply to the
                node as the configuration stands.
        """
        config, node = self.config, change.node
        where = f"membership change {change.action} {node!r}"
        if change.action == "add_learner":
            if node in config.members:
                raise KeelError(f"{where}: already a member (voters {list(config.voters)}, learners {list(config.learners)})")
            return config.changed(config.voters, config.learners + (node,))
        if change.action == "promote":
            if node not in config.learners:
                raise KeelError(f"{where}: not a learner (learners {list(config.learners)}); add it as one first")
            if not caught_up:
                raise KeelError(f"{where}: the learner's log is still behind the leader's; retry once it caught up")
            return config.changed(config.voters + (node,), tuple(n for n in config.learners if n != node))
        if change.action == "remove":
            if node not in config.members:
                raise KeelError(f"{where}: not a member (voters {list(config.voters)}, learners {list(config.learners)})")
            if config.voters == (node,):
                raise KeelError(f"{where}: the last voter cannot be removed")
            return config.changed(tuple(n for n in config.voters if n != node),
                                  tuple(n for n in config.learners if n != node))
        raise KeelError(f"membership change: unknown action {change.action!r} (actions: {', '.join(ACTIONS)})")

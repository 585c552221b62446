"""The partition map: which data nodes hold which partition, at which epoch.

Theory of operation. A key belongs to one of a fixed number of partitions,
`partition_of(key, partitions)`, set when the cluster is created and never
changed afterwards (changing it would move almost every key). The core's
controller assigns each partition to a replica set of data nodes and
commits the assignment as a `PartitionMap` with a higher `epoch`; data
nodes and clients follow it by watch.

A partition's `Placement` names three kinds of node, so that a partition
can move without losing a read or a write:

- `owners` hold the partition's records and serve reads and writes;
- `joining` nodes are being given the partition: they take every write
  (so nothing written during the move is missed) and are streamed the
  older records, but serve no reads until they report ready;
- `leaving` owners stay owners until the joiners are ready, then let go.

Writes go to `writers()` (owners and joiners), reads to `readers()`
(owners). `target()`, the owners that stay plus the joiners, is what the
partition converges to once every joiner is ready. The rules a map keeps,
which `check()` enforces: the epoch is at least 1; node lists are sorted
without repeats; a joiner is not an owner; a leaver is an owner; a
partition with joiners has an owner to stream from; every partition aims
at the same number of replicas, at most `replicas`.

A map travels and is stored as canonical CBOR plain data, so equal maps
are equal bytes:
`{"format": 1, "epoch": e, "replicas": n, "placements": [[owners, joining, leaving], ...]}`
with node lists as sorted arrays of text. A reader ignores keys it does
not know, and refuses anything else that is not a well-formed map.

Sans-I/O: nothing here reads a clock or touches the network.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import attrs

from keel import wire
from keel.errors import KeelError, WireError

__all__ = ["FORMAT", "MAX_PARTITIONS", "MapError", "PartitionMap", "Placement", "partition_of"]

FORMAT = 1  # the encoding's version; a reader refuses any other
MAX_PARTITIONS = 2**16  # partitions; the whole map is one core value, so it must stay small


class MapError(KeelError):
    """A partition map breaks a rule, or bytes that should hold one do not."""


def partition_of(key: bytes, partitions: int) -> int:
    """The partition that holds `key`, out of `partitions`.

    The BLAKE2b digest of the key (hashlib defaults: 64-byte digest, no key,
    salt or personalization), its first 8 bytes read as a big-endian
    unsigned integer, modulo `partitions`. Every node and client must agree
    on this forever: a change would strand every stored key in the wrong
    partition, so this function never changes (pinned by tests).
    """
    if type(partitions) is not int or partitions < 1:
        raise ValueError(f"partitions: {partitions!r} is not a whole number of at least 1")
    return int.from_bytes(hashlib.blake2b(key).digest()[:8], "big") % partitions


def _nodes(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(value))


@attrs.frozen
class Placement:
    """Which nodes serve one partition, and which are taking it over or letting it go."""

    owners: tuple[str, ...] = attrs.field(default=(), converter=_nodes)  # serve reads and writes
    joining: tuple[str, ...] = attrs.field(default=(), converter=_nodes)  # take writes, are streamed the rest
    leaving: tuple[str, ...] = attrs.field(default=(), converter=_nodes)  # owners that go once joiners are ready

    def writers(self) -> tuple[str, ...]:
        """The nodes a write goes to: owners and joiners."""
        return _nodes(self.owners + self.joining)

    def readers(self) -> tuple[str, ...]:
        """The nodes a read asks: the owners."""
        return self.owners

    def target(self) -> tuple[str, ...]:
        """The replica set once every joiner is ready: owners that stay, and the joiners."""
        return _nodes([n for n in self.owners if n not in self.leaving] + list(self.joining))

    def promoted(self, node: str) -> Placement:
        """This placement once `node`, a joiner, is ready: it owns, and a leaver goes.

        Leavers are kept only while joiners remain to replace them (the
        first ones in sorted order go first), so the partition keeps as
        many readers as it can and never more than its target plus the
        joiners still on their way.

        Raises:
            ValueError: `node` is not joining this partition.
        """
        if node not in self.joining:
            raise ValueError(f"{node!r} is not joining this partition (joining: {list(self.joining)})")
        joining = tuple(n for n in self.joining if n != node)
        going = self.leaving[:max(0, len(self.leaving) - len(joining))]
        return Placement(owners=[n for n in self.owners if n not in going] + [node], joining=joining,
                         leaving=[n for n in self.leaving if n not in going])

    def _problem(self, replicas: int) -> str | None:
        """What is wrong with this placement, or None."""
        for name in ("owners", "joining", "leaving"):
            nodes = getattr(self, name)
            for node in nodes:
                if type(node) is not str or not node:
                    return f"{name}: {node!r} is not a node id (non-empty text)"
            if list(nodes) != sorted(set(nodes)):
                return f"{name}: {list(nodes)} is not sorted without repeats"
        both = sorted(set(self.owners) & set(self.joining))
        if both:
            return f"{both[0]!r} is both owner and joining"
        strays = sorted(set(self.leaving) - set(self.owners))
        if strays:
            return f"{strays[0]!r} is leaving but is not an owner"
        if self.joining and not self.owners:
            return f"joining {list(self.joining)} with no owner to receive the records from"
        if len(self.target()) > replicas:
            return f"target {list(self.target())} has more than {replicas} replicas"
        return None


@attrs.frozen
class PartitionMap:
    """Every partition's placement, as one committed version (`epoch`) of the cluster's layout."""

    epoch: int  # grows by one with every committed map; the first is 1
    replicas: int  # N: how many nodes each partition aims at (fewer while the cluster has fewer nodes)
    placements: tuple[Placement, ...] = attrs.field(converter=tuple)  # one per partition, in partition order

    @property
    def partitions(self) -> int:
        """How many partitions the keyspace is cut into."""
        return len(self.placements)

    @property
    def nodes(self) -> tuple[str, ...]:
        """Every node the map names, sorted."""
        return _nodes({n for p in self.placements for n in p.owners + p.joining})

    @property
    def moving(self) -> tuple[int, ...]:
        """The partitions that have joiners or leavers: a move is under way."""
        return tuple(i for i, p in enumerate(self.placements) if p.joining or p.leaving)

    def partition_for(self, key: bytes) -> int:
        """The partition that holds `key` (`partition_of` with this map's partition count)."""
        return partition_of(key, self.partitions)

    def replicas_for(self, partition: int) -> tuple[str, ...]:
        """The nodes a write to `partition` goes to: its owners and joiners."""
        return self.placements[partition].writers()

    def readers_for(self, partition: int) -> tuple[str, ...]:
        """The nodes a read of `partition` asks: its owners."""
        return self.placements[partition].readers()

    def partitions_of(self, node: str) -> tuple[int, ...]:
        """The partitions whose records `node` keeps (as owner or joiner), in order."""
        return tuple(i for i, p in enumerate(self.placements) if node in p.owners or node in p.joining)

    def check(self) -> None:
        """Refuse a map that breaks a rule (see the module docstring).

        Raises:
            MapError: one line naming the epoch, the partition and what is wrong.
        """
        if type(self.epoch) is not int or self.epoch < 1:
            raise MapError(f"partition map: epoch {self.epoch!r} is not a whole number of at least 1")
        where = f"partition map epoch {self.epoch}"
        if type(self.replicas) is not int or self.replicas < 1:
            raise MapError(f"{where}: replicas {self.replicas!r} is not a whole number of at least 1")
        if not 1 <= self.partitions <= MAX_PARTITIONS:
            raise MapError(f"{where}: {self.partitions} partitions is outside 1…{MAX_PARTITIONS}")
        for i, placement in enumerate(self.placements):
            if not isinstance(placement, Placement):
                raise MapError(f"{where}: partition {i}: {type(placement).__name__} is not a Placement")
            problem = placement._problem(self.replicas)
            if problem is not None:
                raise MapError(f"{where}: partition {i}: {problem}")
        aim = len(self.placements[0].target())
        for i, placement in enumerate(self.placements):
            if len(placement.target()) != aim:
                raise MapError(f"{where}: partition {i} aims at {len(placement.target())} replicas, partition 0 "
                               f"at {aim}; all must aim at the same number")

    def to_bytes(self) -> bytes:
        """The map as canonical CBOR plain data: equal maps, equal bytes.

        Raises:
            MapError: the map breaks a rule; a bad map is never written.
        """
        self.check()
        return wire.encode_plain({
            "format": FORMAT,
            "epoch": self.epoch,
            "replicas": self.replicas,
            "placements": [[list(p.owners), list(p.joining), list(p.leaving)] for p in self.placements],
        })

    @classmethod
    def from_bytes(cls, data: bytes) -> PartitionMap:
        """The map that `to_bytes` gave, from bytes read from the core.

        Raises:
            MapError: one line saying what is wrong: not CBOR, another
                format, a field missing or of the wrong shape, a list not
                in canonical (sorted) order, or a rule `check()` enforces.
        """
        try:
            raw = wire.decode_plain(data, "partition map")
        except WireError as exc:
            raise MapError(str(exc)) from None
        if not isinstance(raw, dict):
            raise MapError(f"partition map: a {type(raw).__name__}, not a map")
        if raw.get("format") != FORMAT:
            raise MapError(f"partition map: format {raw.get('format')!r}, this node reads format {FORMAT}")
        for name in ("epoch", "replicas"):
            if type(raw.get(name)) is not int:
                raise MapError(f"partition map: {name} {raw.get(name)!r} is not an integer")
        rows = raw.get("placements")
        if not isinstance(rows, list):
            raise MapError(f"partition map: placements {_short(rows)} is not an array")
        placements = []
        for i, row in enumerate(rows):
            if not (isinstance(row, list) and len(row) == 3
                    and all(isinstance(nodes, list) and all(type(n) is str for n in nodes) for nodes in row)):
                raise MapError(f"partition map: partition {i}: {_short(row)} is not [owners, joining, leaving], "
                               "three arrays of text")
            for name, nodes in zip(("owners", "joining", "leaving"), row):
                if nodes != sorted(set(nodes)):
                    raise MapError(f"partition map: partition {i}: {name} {_short(nodes)} is not sorted "
                                   "without repeats")
            placements.append(Placement(owners=row[0], joining=row[1], leaving=row[2]))
        built = cls(epoch=raw["epoch"], replicas=raw["replicas"], placements=placements)
        built.check()
        return built


def _short(value: Any) -> str:
    """`value` for an error line, cut so one bad map cannot flood a log."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."

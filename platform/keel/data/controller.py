"""The controller: when the core leader commits a new partition map, and the request that commits it.

Theory of operation. The controller runs on the core leader and is
sans-I/O: a driver feeds it what the core holds and polls what to do.

- `members(members, now)`: every data node registered under
  `config.member_prefix`, each an ephemeral key attached to the node's
  lease (`members_from_kvs` reads them from a range or a watch). A key
  goes when its lease expires, and so does the node.
- `committed(current, mod_revision)`: the map stored at `config.map_key`
  and that key's mod revision (None and 0: no map yet), from a read, a
  watch, or the answer to a proposal (`answered`).
- `ready(report)`: a data node holds the records of a partition it joins.
- `tick(now)`, then `poll()`: at most one `Proposal`, the next map and the
  request that commits it (`keel.core.api.CommitMap`) only if the map key's
  mod revision is still the one the controller read. Two controllers (an
  old leader that has not noticed yet) can never both commit from the same
  map: whichever request comes second finds the revision moved and changes
  nothing. (The map key is under keel's reserved prefix, which a `Txn`
  cannot write: `CommitMap` is the compare-and-set the core offers for it,
  and it checks the map it stores.)

The rules it keeps:

- A change of the member set settles first: the map for it is proposed
  `settle` seconds after the last change, so a burst (a cluster starting,
  a rack coming back or going down) gives one map, and never later than
  `max_wait` after the burst's first change, so a steady trickle cannot
  hold placement back. Departures wait too: until the map drops a
  departed node, coordinators find it unreachable and count it as such.
  A node whose lease changed but which stayed (a quick restart that kept
  its records) changes no placement.
- A ready report counts only for the epoch it names, only while that is
  the committed epoch, and only if the node still joins that partition
  and is still a member: a report from an older map may speak of records
  the node has let go since (it left the partition and came back). Data
  nodes repeat their report until a map shows them as owner. Reports are
  proposed as soon as possible, all pending ones in one map.
- One proposal at a time: after `poll()` gives one, none other until
  `answered()` brings its reply, `unanswered()` says none will come, or
  `committed()` shows the map key moved. If another map won, the
  controller places again on that one at once.
- Each proposed map's epoch is one above the map it was computed from.

Nothing here reads a clock or touches the network: time comes in as `now`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import attrs

from keel.core.api import CommitMap, CommitMapReply, KeyValue
from keel.data.partition_map import MAX_PARTITIONS, PartitionMap
from keel.data.placement import DEFAULT_PARTITIONS, DEFAULT_REPLICAS, place, ready_all

__all__ = [
    "Controller",
    "ControllerConfig",
    "ControllerOutput",
    "Member",
    "Proposal",
    "ReadyReport",
    "map_request",
    "members_from_kvs",
]


# --- validators: each raises ValueError about the value, as keel.config's do ------------


def _key(_: Any, attribute: attrs.Attribute, value: bytes) -> None:
    if type(value) is not bytes or not value:
        raise ValueError(f"{value!r} is not a key (non-empty bytes)")


def _count(low: int, high: int | None = None) -> Any:
    def check(_: Any, attribute: attrs.Attribute, value: int) -> None:
        if type(value) is not int or value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise ValueError(f"{value!r} is not a whole number {bound}")

    return check


def _seconds(_: Any, attribute: attrs.Attribute, value: float) -> None:
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{value!r} is not a duration in seconds (a finite number of at least 0)")


@attrs.frozen(kw_only=True)
class ControllerConfig:
    """Where the controller finds membership and the map, and how it places partitions."""

    map_key: bytes = attrs.field(validator=_key)  # the core key holding the committed map
    member_prefix: bytes = attrs.field(validator=_key)  # each data node's ephemeral key: this prefix + its id
    partitions: int = attrs.field(default=DEFAULT_PARTITIONS, validator=_count(1, MAX_PARTITIONS))  # P, first map only
    replicas: int = attrs.field(default=DEFAULT_REPLICAS, validator=_count(1))  # N
    settle: float = attrs.field(default=2.0, validator=_seconds)  # quiet time after a membership change
    max_wait: float = attrs.field(default=10.0, validator=_seconds)  # the most a change waits for quiet

    @max_wait.validator
    def _not_below_settle(self, attribute: attrs.Attribute, value: float) -> None:
        if value < self.settle:
            raise ValueError(f"{value!r} is below settle ({self.settle!r}); a change would never wait to settle")

    @member_prefix.validator
    def _map_key_outside(self, attribute: attrs.Attribute, value: bytes) -> None:
        if self.map_key.startswith(value):
            raise ValueError(f"{value!r} holds map_key {self.map_key!r}; the map would read as a data node")


@attrs.frozen
class Member:
    """A live data node: its id and the lease its key is attached to."""

    node: str
    lease: int


@attrs.frozen
class ReadyReport:
    """A data node holds the records of `partition`, which it joins in map `epoch`."""

    partition: int
    node: str
    epoch: int


@attrs.frozen
class Proposal:
    """A map to commit, and the compare-and-set request that commits it."""

    map: PartitionMap  # the next map, epoch one above the one read
    base_revision: int  # the mod revision of the map key it was computed from; 0: no map was there
    request: CommitMap  # send as is, once; hand its reply to `Controller.answered`, or on no reply read the key again


@attrs.frozen
class ControllerOutput:
    """What the driver does after `poll()`, in this order."""

    proposal: Proposal | None  # send `proposal.request` to the core (given once per proposal)
    wake_at: float | None  # call tick no later than this (a settling change falls due); None: at the next input


def map_request(new: PartitionMap, base_revision: int) -> CommitMap:
    """The request that stores `new` only if the map key's mod revision is `base_revision` (0: no map yet).

    Raises:
        MapError: `new` breaks a rule of the map (it is never written).
    """
    return CommitMap(new.to_bytes(), base_revision)


def members_from_kvs(prefix: bytes, kvs: Iterable[KeyValue]) -> tuple[Member, ...]:
    """The members registered under `prefix`, from the keys a range or a watch gave.

    A key's suffix is the node id (UTF-8). A key outside the prefix, with
    an empty or undecodable id, or attached to no lease is no member: it
    would never expire, so it could pin a node in the map forever.
    """
    found = []
    for kv in kvs:
        if not kv.key.startswith(prefix) or kv.lease == 0:
            continue
        try:
            node = kv.key[len(prefix):].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if node:
            found.append(Member(node, kv.lease))
    return tuple(sorted(found, key=lambda m: m.node))


class Controller:
    """Decides when to commit the next partition map; see the module docstring."""

    def __init__(self, config: ControllerConfig) -> None:
        self.config = config
        self._now = -math.inf
        self._members: dict[str, int] | None = None  # node → lease; None until first fed
        self._map: PartitionMap | None = None
        self._revision = -1  # the map key's mod revision; -1 until first fed
        self._reports: set[tuple[int, str]] = set()  # (partition, node), for the committed epoch
        self._first_change: float | None = None  # the settling burst of membership changes, if any
        self._last_change: float | None = None
        self._stale = True  # inputs moved since the last placement: place again when no burst is settling
        self._pending: Proposal | None = None  # given out by poll, not yet answered

    # --- inputs ---------------------------------------------------------------------------

    def members(self, members: Iterable[Member], now: float) -> None:
        """The whole current membership, as the member keys stand.

        Raises:
            ValueError: one node given twice.
        """
        given: dict[str, int] = {}
        for member in members:
            if member.node in given:
                raise ValueError(f"members: {member.node!r} given twice")
            given[member.node] = member.lease
        changed = self._members is None or given.keys() != self._members.keys()
        self._members = given
        if changed:
            if self._first_change is None:
                self._first_change = now
            self._last_change = now
            self._stale = True

    def committed(self, current: PartitionMap | None, mod_revision: int) -> None:
        """The map at `config.map_key` and the key's mod revision (None and 0: no map), from a read or a watch.

        A read older than one already seen (a lower revision) is ignored,
        except one that finds the key gone. A newer one ends the pending
        proposal: its compare can no longer hold, or it is what landed.
        """
        if mod_revision < self._revision and current is not None:
            return
        if mod_revision == self._revision and current == self._map:
            return
        self._pending = None
        self._map, self._revision = current, mod_revision
        self._reports = set()  # they spoke of the old epoch; nodes still joining report again
        self._stale = True

    def answered(self, proposal: Proposal, reply: CommitMapReply) -> None:
        """The core's reply to `proposal.request`: committed, or another map was there (read it and feed it
        to `committed`)."""
        if reply.committed:
            self.committed(proposal.map, reply.mod_revision)
        self.unanswered(proposal)

    def unanswered(self, proposal: Proposal) -> None:
        """`proposal.request` got no reply (a timeout, a lost leader): it may or may not have applied.

        The controller may propose again from what it knows; if the first
        did apply, the compare of the second fails and its reply says so.
        """
        if self._pending is proposal:
            self._pending = None
            self._stale = True

    def ready(self, report: ReadyReport) -> bool:
        """A data node's ready report; returns whether it counts (see the module docstring)."""
        if not self._valid(report.partition, report.node, report.epoch):
            return False
        self._reports.add((report.partition, report.node))
        return True

    def tick(self, now: float) -> None:
        """Time passes; `now` in seconds, from any monotonic clock."""
        self._now = max(self._now, now)

    # --- output ---------------------------------------------------------------------------

    def poll(self) -> ControllerOutput:
        """What to do now: a proposal to send (each given once), and when to tick next."""
        proposal = None
        if self._pending is None:
            proposal = self._pending = self._decide()
        return ControllerOutput(proposal=proposal, wake_at=self._due() if self._settling() else None)

    @property
    def pending(self) -> Proposal | None:
        """The proposal sent and not yet answered."""
        return self._pending

    # --- the rules ------------------------------------------------------------------------

    def _due(self) -> float:
        assert self._first_change is not None and self._last_change is not None
        return min(self._last_change + self.config.settle, self._first_change + self.config.max_wait)

    def _settling(self) -> bool:
        return self._first_change is not None and self._now < self._due()

    def _valid(self, partition: int, node: str, epoch: int) -> bool:
        current = self._map
        return (current is not None and epoch == current.epoch and 0 <= partition < current.partitions
                and node in current.placements[partition].joining
                and self._members is not None and node in self._members)

    def _decide(self) -> Proposal | None:
        if self._members is None or self._revision < 0:
            return None
        current = self._map
        epoch = current.epoch if current is not None else 0
        reports = sorted(r for r in self._reports if self._valid(r[0], r[1], epoch))
        new = ready_all(current, reports) if current is not None and reports else current
        if not self._settling() and self._stale:
            partitions = current.partitions if current is not None else self.config.partitions
            placed = place(new, self._members, partitions, self.config.replicas)
            new = placed if placed is not None else new
            self._first_change = self._last_change = None
            self._stale = False
        if new is current or new is None:
            return None
        new = attrs.evolve(new, epoch=epoch + 1)
        return Proposal(map=new, base_revision=self._revision, request=map_request(new, self._revision))

"""Placement: which nodes each partition goes to, moving as little as possible.

Theory of operation. `place(current, members)` starts from the committed
map, not from scratch, and changes it as little as it can (docs/data.md,
"Placement", says why this and not consistent or rendezvous hashing):

1. A node that is no longer a member (its lease expired) is dropped from
   every partition at once: as owner, joiner or leaver.
2. Each partition aims at `r = min(replicas, len(members))` nodes, and each
   node at its quota, `⌊P·r/n⌋` or `⌈P·r/n⌉` partitions (`_Plan` says who
   gets a ceiling). Starting from the current targets:
   a. a partition aiming at more than `r` nodes (replicas was lowered) drops
      joiners first (an owner dropped stays an owner, leaving, so (c) can
      hand it back at no cost if the drops fell unevenly);
   b. a partition aiming at fewer gets a node below quota, one that still
      owns it first (a leaver asked to stay costs no copy), then the one
      with the most room, then the highest rendezvous score; if every node
      with room has it already, a node added elsewhere in this step takes
      it and that partition gets another (`_Plan.reroute`);
   c. while a node is above quota, one of its partitions moves to a node
      below quota that lacks it: undoing a move first, then moving a
      partition the node is only joining, then the emptiest node, then
      the highest rendezvous score.
   Every addition in (b) and (c) of a node that does not own the partition
   is a copy the cluster must stream; (c) moves only what quotas force, so
   one join moves the joiner's quota and one leave what the leaver held.
3. Each partition's new placement: live owners stay owners; target nodes
   that are not owners join; owners outside the target leave, as many as
   there are joiners to replace them (the rest go now). A partition left
   with no live owner has nobody to stream from: its target owns at once.

A move completes with `ready(map, partition, node)`: the joiner owns and a
leaver goes (`Placement.promoted`), in the next map.

The rendezvous score (BLAKE2b of partition and node) only breaks ties, so
that equal choices spread over the nodes instead of favouring the first
name; nothing here is random. Same inputs, same map.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import attrs

from keel.data.partition_map import MAX_PARTITIONS, PartitionMap, Placement

__all__ = ["DEFAULT_PARTITIONS", "DEFAULT_REPLICAS", "place", "ready", "ready_all", "target_loads"]

DEFAULT_PARTITIONS = 64  # partitions; a few per node for clusters of up to ~20 nodes, a small map
DEFAULT_REPLICAS = 3  # N; a write with W=2 survives one node down, a quorum read with R=2 sees it


def place(current: PartitionMap | None, members: Iterable[str], partitions: int = DEFAULT_PARTITIONS,
          replicas: int = DEFAULT_REPLICAS) -> PartitionMap | None:
    """The next map for `members`, from the committed `current` (None: there is none yet).

    Args:
        current: the committed map; its partition count must be `partitions`.
        members: the live data nodes' ids, in any order.
        partitions: P, fixed when the cluster was created.
        replicas: N, the replicas each partition aims at (all members while
            there are fewer than N).

    Returns:
        The next map (epoch one above `current`'s; 1 for the first), or None
        when nothing would change, or when there are no members (a map that
        names nobody serves nobody; the old one lets returning nodes resume).

    Raises:
        ValueError: a count out of range, a member that is not a node id,
            or `partitions` differing from `current`'s.
    """
    given = set(members)
    for node in given:
        if type(node) is not str or not node:
            raise ValueError(f"members: {node!r} is not a node id (non-empty text)")
    nodes = tuple(sorted(given))
    if type(partitions) is not int or not 1 <= partitions <= MAX_PARTITIONS:
        raise ValueError(f"partitions: {partitions!r} is outside 1…{MAX_PARTITIONS}")
    if type(replicas) is not int or replicas < 1:
        raise ValueError(f"replicas: {replicas!r} is not a whole number of at least 1")
    if current is not None and current.partitions != partitions:
        raise ValueError(f"partitions: {partitions} differs from the map's {current.partitions}; "
                         "the partition count is fixed when the cluster is created")
    if not nodes:
        return None
    alive = set(nodes)
    if current is None:
        owned: list[set[str]] = [set() for _ in range(partitions)]
        targets: list[set[str]] = [set() for _ in range(partitions)]
    else:
        owned = [set(p.owners) & alive for p in current.placements]
        targets = [set(p.target()) & alive for p in current.placements]
    _balance(targets, owned, nodes, min(replicas, len(nodes)))
    placements = tuple(_placement(o, t) for o, t in zip(owned, targets, strict=True))
    if current is not None and placements == current.placements and replicas == current.replicas:
        return None
    return PartitionMap(epoch=current.epoch + 1 if current is not None else 1, replicas=replicas,
                        placements=placements)


def ready(current: PartitionMap, partition: int, node: str) -> PartitionMap:
    """The next map once `node` holds `partition`'s records: it owns it, and a leaver goes.

    Raises:
        ValueError: `node` is not joining `partition` in `current`.
    """
    return ready_all(current, [(partition, node)])


def ready_all(current: PartitionMap, reports: Iterable[tuple[int, str]]) -> PartitionMap:
    """The next map once each `(partition, node)` joiner holds its records: one epoch for all of them.

    Raises:
        ValueError: a node is not joining its partition in `current`, or
            the partition does not exist.
    """
    placements = list(current.placements)
    for partition, node in reports:
        if not 0 <= partition < len(placements):
            raise ValueError(f"partition {partition} is outside 0…{len(placements) - 1}")
        placements[partition] = placements[partition].promoted(node)
    return attrs.evolve(current, epoch=current.epoch + 1, placements=tuple(placements))


def target_loads(current: PartitionMap) -> dict[str, int]:
    """How many partitions each node aims at (its target load), by node id."""
    loads: dict[str, int] = {}
    for placement in current.placements:
        for node in placement.target():
            loads[node] = loads.get(node, 0) + 1
    return dict(sorted(loads.items()))


def _balance(targets: list[set[str]], owned: list[set[str]], nodes: tuple[str, ...], r: int) -> None:
    """Change `targets` in place, as little as possible, so each has `r` nodes and each node meets its quota."""
    plan = _Plan.start(targets, owned, nodes)

    # a. Too many replicas: drop joiners first, they hold the least.
    for p, target in enumerate(targets):
        while len(target) > r:
            drop = max(target, key=lambda n: (n not in owned[p], plan.score(p, n)))
            target.discard(drop)
            plan.load[drop] -= 1

    plan.set_quotas(len(targets) * r)

    # b. Too few: a node with room, one that still owns the partition first.
    # When every node with room already has the partition, a node that got
    # another partition in this step may take this one instead and hand that
    # one on (`_Plan.reroute`), so the fill stays within quotas where it can.
    for p, target in enumerate(targets):
        while len(target) < r:
            lacking = [n for n in nodes if n not in target]
            roomy = [n for n in lacking if plan.spare(n) > 0]
            if roomy:
                add = max(roomy, key=lambda n: (n in owned[p], plan.spare(n), plan.score(p, n)))
            elif plan.reroute(p):
                continue
            else:
                # No way within quotas: overfill the least full node; (c) moves one partition off it.
                add = max(lacking, key=lambda n: (n in owned[p], plan.spare(n), plan.score(p, n)))
            plan.add(p, add)

    # c. Above quota: move one partition at a time to a node below quota.
    # One always exists: the loads sum to the quotas (with the shared
    # ceilings), and a node above quota (≥ base + 1) aims at more partitions
    # than one with room (≤ base), so it has a partition that node lacks.
    while True:
        over = [n for n in nodes if plan.load[n] > plan.cap[n]]
        if not over:
            return
        source = max(over, key=lambda n: (plan.load[n] - plan.cap[n], n))
        under = [n for n in nodes if plan.spare(n) > 0]
        best: tuple[tuple[bool, bool, int, int], int, str] | None = None
        for p, target in enumerate(targets):
            if source not in target:
                continue
            for node in under:
                if node in target:
                    continue
                key = (node in owned[p], source not in owned[p], plan.spare(node), plan.score(p, node))
                if best is None or key > best[0]:
                    best = (key, p, node)
        assert best is not None, "a node above quota shares every partition with every node that has room"
        _, p, node = best
        targets[p].discard(source)
        plan.load[source] -= 1
        plan.add(p, node)


@attrs.define
class _Plan:
    """The loads and quotas while `_balance` works.

    Quotas: `P·r = base·n + extra`, so `extra` nodes aim at `base + 1`
    partitions and the rest at `base`. Nodes already above `base` get the
    ceilings first: each one given there spares a move, whichever node
    gets it (the busiest first, then by id, only to be deterministic). The
    ceilings left over (`pool`) are not handed out in advance but to the
    first nodes at `base` that need one while partitions are filled, so
    the choice of who gets a ceiling never blocks a fill.
    """

    targets: list[set[str]]
    nodes: tuple[str, ...]
    load: dict[str, int]  # partitions each node aims at, as the targets stand
    cap: dict[str, int] = attrs.Factory(dict)  # the most each node may aim at, before any pooled ceiling
    base: int = 0
    pool: int = 0  # ceilings (base + 1) not yet given to any node
    added: list[set[str]] = attrs.Factory(list)  # nodes each partition gained in this plan: free to reroute
    scores: dict[tuple[int, str], int] = attrs.Factory(dict)

    @classmethod
    def start(cls, targets: list[set[str]], owned: list[set[str]], nodes: tuple[str, ...]) -> _Plan:
        load = dict.fromkeys(nodes, 0)
        for target in targets:
            for node in target:
                load[node] += 1
        return cls(targets=targets, nodes=nodes, load=load, added=[set() for _ in targets])

    def set_quotas(self, copies: int) -> None:
        self.base, extra = divmod(copies, len(self.nodes))
        above = sorted((n for n in self.nodes if self.load[n] > self.base), key=lambda n: (-self.load[n], n))
        ceilings = set(above[:extra])
        self.cap = {n: self.base + (n in ceilings) for n in self.nodes}
        self.pool = extra - len(ceilings)

    def score(self, partition: int, node: str) -> int:
        """The node's rendezvous score for the partition: breaks ties so choices spread over the nodes."""
        key = (partition, node)
        if key not in self.scores:
            digest = hashlib.blake2b(f"{partition}/{node}".encode(), digest_size=8).digest()
            self.scores[key] = int.from_bytes(digest, "big")
        return self.scores[key]

    def spare(self, node: str) -> int:
        """How many more partitions the node may take (a pooled ceiling counted if one is left)."""
        pooled = 1 if self.pool > 0 and self.cap[node] == self.base else 0
        return self.cap[node] + pooled - self.load[node]

    def add(self, partition: int, node: str) -> None:
        self.targets[partition].add(node)
        self.added[partition].add(node)
        self.load[node] += 1
        if self.load[node] == self.base + 1 and self.cap[node] == self.base and self.pool > 0:
            self.cap[node] += 1
            self.pool -= 1

    def reroute(self, start: int) -> bool:
        """Give partition `start` one more node by an augmenting path through this plan's additions.

        Breadth first: `start` may take a node `y` without room that was
        added to some partition `q` in this plan, if `q` can get another
        node instead, and so on, until a partition on the path can take a
        node with room. Every node on the path but the last changes
        partition, not load, and the copies to stream grow by exactly one.
        Returns whether a path was found (and taken).
        """
        via: dict[int, tuple[int, str] | None] = {start: None}  # partition → (who takes its node, that node)
        seen: set[str] = set()
        queue = [start]
        for partition in queue:
            for node in self.nodes:
                if node in self.targets[partition] or node in seen:
                    continue
                seen.add(node)
                if self.spare(node) > 0:
                    self.add(partition, node)
                    step = via[partition]
                    while step is not None:
                        taker, moved = step
                        self.targets[partition].discard(moved)
                        self.added[partition].discard(moved)
                        self.targets[taker].add(moved)
                        self.added[taker].add(moved)
                        partition, step = taker, via[taker]
                    return True
                for q, gained in enumerate(self.added):
                    if node in gained and q not in via:
                        via[q] = (partition, node)
                        queue.append(q)
        return False


def _placement(owned: set[str], target: set[str]) -> Placement:
    """A partition's placement from its live owners and the nodes it aims at."""
    if not owned:
        return Placement(owners=target)
    joining = target - owned
    leaving = sorted(owned - target)
    # The same leavers stay as `Placement.promoted` keeps: the last ones, one per joiner still to come.
    staying = leaving[max(0, len(leaving) - len(joining)):]
    going = set(leaving) - set(staying)
    return Placement(owners=owned - going, joining=joining, leaving=staying)

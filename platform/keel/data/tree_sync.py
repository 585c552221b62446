"""Anti-entropy between two replicas of a partition: compare hash trees, find the keys that differ.

Theory of operation. Two `TreeSync`s, one per replica, trade messages
until each knows what it must send the other; the bytes they trade grow
with the number of differing keys (times the tree's depth), not with the
partition's size. The initiator sends `SyncBegin` (its root); from then on
the two alternate `SyncStep`s, each answering everything the last one
asked, so every round moves each open node one level down (or settles it).
A step that asks nothing (no children, no entries) is `final`: its
receiver takes its `want` and stops without answering.

A node whose value or count differs between the replicas is settled by
the side that learns of it, knowing its own count `m` and the peer's `t`:

- `t == 0`: the peer holds nothing there; this side sends the whole range
  (`SyncResult.ranges`, streamed from the record file by slot range), and
  says nothing;
- `m <= list_at` (or the node is a single slot): it lists its entries
  there, `(key, digest)`, possibly none;
- otherwise it sends the node's 16 children (value and count each) and the
  peer compares them with its own, settling each child that differs by the
  same rule.

The side that receives a list compares it with its own entries there,
unless it holds more than `list_at` itself: then it answers with its
children instead, so neither side ever lists more than `list_at` entries
per node and a large one-sided difference becomes ranges, not key lists.
Comparing two lists settles both directions: keys this side holds that
the peer lacks or holds with another digest it sends; keys the other way
go back in `want`. An empty list means "send me all of it" (a range).

The result is the set of keys (and slot ranges) each side must send; the
data server sends those records and each side merges what it receives
with the store's merge, so keys held differently on both sides go both
ways. Writes landing during a sync may be missed or sent twice; the next
round catches them. Values are 128-bit sums (`keel.data.merkle`), so a
difference hiding behind equal values needs a 2**-128 coincidence.

Sans-I/O, with one exception spelled out: entries below the levels a
`MerkleTree` keeps come from `load(lo, hi)`, the `(key, digest)` pairs in
a slot range (`RecordFile.entries`); when that reads a disk, the driver
calls `receive` in a worker thread. Messages are plain wire messages, so
the data server can carry them between nodes as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from keel import wire
from keel.data.merkle import (
    DIGEST_BYTES,
    FANOUT,
    MAX_LEVEL,
    VALUE_BYTES,
    MerkleTree,
    Summary,
    node_of,
    slot_of,
    slot_range,
    split,
    summary_of,
)
from keel.errors import WireError

__all__ = [
    "LIST_AT",
    "Children",
    "Entries",
    "EntryLoader",
    "Exchange",
    "SyncBegin",
    "SyncResult",
    "SyncStep",
    "TreeSync",
    "exchange",
]

LIST_AT = 8  # entries a side lists rather than descend: 8 entries (~35 bytes each) cost about one children message
# (lo, hi) -> the (key, digest) pairs with slots in [lo, hi), in slot order
EntryLoader = Callable[[int, int], Sequence[tuple[bytes, bytes]]]


def _node(instance: Children | Entries, _: attrs.Attribute, __: int) -> None:
    """Validates `(level, index)` as a node address; put on `index`, which follows `level`."""
    level, index = instance.level, instance.index
    if type(level) is not int or not 0 <= level <= MAX_LEVEL:
        raise ValueError(f"level {level!r} is outside 0..{MAX_LEVEL}")
    if type(index) is not int or not 0 <= index < FANOUT**level:
        raise ValueError(f"node index {index!r} is outside level {level}")


@wire.message("keel.data.sync.begin")
@attrs.frozen
class SyncBegin:
    """The initiator's root: the first message of an exchange."""

    value: bytes = attrs.field()
    count: int = attrs.field(validator=attrs.validators.ge(0))

    @value.validator
    def _check(self, _: attrs.Attribute, value: bytes) -> None:
        if len(value) != VALUE_BYTES:
            raise ValueError(f"a node value is {VALUE_BYTES} bytes, not {len(value)}")


@attrs.frozen
class Children:
    """The sender's 16 children of node `(level, index)`: compare them with yours."""

    level: int
    index: int = attrs.field(validator=_node)
    values: bytes = attrs.field()  # FANOUT values of VALUE_BYTES, child by child
    counts: tuple[int, ...] = attrs.field(converter=tuple)

    @values.validator
    def _check(self, _: attrs.Attribute, values: bytes) -> None:
        if self.level == MAX_LEVEL:
            raise ValueError(f"a level {MAX_LEVEL} node has no children")
        if len(values) != FANOUT * VALUE_BYTES or len(self.counts) != FANOUT:
            raise ValueError(f"children come {FANOUT} at a time, {VALUE_BYTES}-byte values")
        if not all(type(c) is int and c >= 0 for c in self.counts):
            raise ValueError("counts are non-negative ints")

    def summaries(self) -> list[Summary]:
        """The children as `Summary`s, in order."""
        return [Summary(self.values[i * VALUE_BYTES : (i + 1) * VALUE_BYTES], self.counts[i]) for i in range(FANOUT)]


@attrs.frozen
class Entries:
    """Every `(key, digest)` the sender holds in node `(level, index)`; none: send all of it."""

    level: int
    index: int = attrs.field(validator=_node)
    keys: tuple[bytes, ...] = attrs.field(converter=tuple)
    digests: bytes = attrs.field()  # one DIGEST_BYTES digest per key, in order

    @digests.validator
    def _check(self, _: attrs.Attribute, digests: bytes) -> None:
        if len(digests) != DIGEST_BYTES * len(self.keys):
            raise ValueError(f"{len(self.keys)} keys need {DIGEST_BYTES * len(self.keys)} bytes of digests")

    @classmethod
    def of(cls, level: int, index: int, entries: Sequence[tuple[bytes, bytes]]) -> Entries:
        """The message listing `entries`."""
        return cls(level, index, tuple(k for k, _ in entries), b"".join(d for _, d in entries))

    def pairs(self) -> dict[bytes, bytes]:
        """Key to digest."""
        return {k: self.digests[i * DIGEST_BYTES : (i + 1) * DIGEST_BYTES] for i, k in enumerate(self.keys)}


@wire.message("keel.data.sync.step")
@attrs.frozen
class SyncStep:
    """One turn of an exchange: nodes to compare, lists to compare, keys to send back."""

    children: tuple[Children, ...] = attrs.field(default=(), converter=tuple)
    entries: tuple[Entries, ...] = attrs.field(default=(), converter=tuple)
    want: tuple[bytes, ...] = attrs.field(default=(), converter=tuple)  # keys the receiver must send

    @property
    def final(self) -> bool:
        """Nothing here needs an answer: the exchange ends with this message."""
        return not self.children and not self.entries


@attrs.frozen
class SyncResult:
    """What one side must send the other once an exchange is done."""

    keys: frozenset[bytes]
    ranges: tuple[tuple[int, int], ...]  # slot ranges [lo, hi) to send whole (`RecordFile.scan(slots=...)`)


class TreeSync:
    """One replica's side of an exchange; see the module docstring."""

    def __init__(self, tree: MerkleTree, load: EntryLoader, *, list_at: int = LIST_AT) -> None:
        """Compare `tree`, with entries below its kept levels from `load`."""
        self.tree = tree
        self._load = load
        self._list_at = list_at
        self._keys: set[bytes] = set()
        self._ranges: list[tuple[int, int]] = []
        self._done = False

    @property
    def done(self) -> bool:
        """The exchange has ended: `result()` is final."""
        return self._done

    def result(self) -> SyncResult:
        """The keys and slot ranges this side must send the other."""
        return SyncResult(frozenset(self._keys), tuple(sorted(self._ranges)))

    def begin(self) -> SyncBegin:
        """The initiator's first message."""
        root = self.tree.root
        return SyncBegin(root.value, root.count)

    def receive(self, msg: SyncBegin | SyncStep) -> SyncStep | None:
        """Take the peer's message; return the answer to send, or None when the exchange is over.

        Raises:
            WireError: the peer listed a key outside the node it named.
        """
        if self._done:
            raise ValueError("this exchange is over")
        children: list[Children] = []
        entries: list[Entries] = []
        want: list[bytes] = []
        if isinstance(msg, SyncBegin):
            mine = self.tree.root
            if mine != Summary(msg.value, msg.count):
                self._differs(children, entries, 0, 0, mine.count, msg.count, None)
        else:
            for item in msg.children:
                self._compare_children(children, entries, item)
            for listed in msg.entries:
                self._compare_entries(children, want, listed)
            self._keys.update(msg.want)
            if msg.final:
                self._done = True
                return None
        out = SyncStep(children, entries, want)
        self._done = out.final
        return out

    # --- settling nodes ----------------------------------------------------------

    def _differs(self, children: list[Children], entries: list[Entries], level: int, index: int, mine: int,
                 theirs: int, held: list[tuple[bytes, bytes]] | None) -> None:
        """Settle node `(level, index)`, which differs; `held` is this side's entries there, if already loaded."""
        if theirs == 0:
            self._ranges.append(slot_range(level, index))
        elif mine <= self._list_at or level == MAX_LEVEL:
            entries.append(Entries.of(level, index, held if held is not None else self._entries(level, index)))
        else:
            summaries, _ = self._children(level, index)
            children.append(Children(level, index, b"".join(s.value for s in summaries), [s.count for s in summaries]))

    def _compare_children(self, children: list[Children], entries: list[Entries], theirs: Children) -> None:
        mine, held = self._children(theirs.level, theirs.index)
        for i, (a, b) in enumerate(zip(mine, theirs.summaries())):
            if a != b:
                self._differs(children, entries, theirs.level + 1, theirs.index * FANOUT + i, a.count, b.count,
                              held[i] if held is not None else None)

    def _compare_entries(self, children: list[Children], want: list[bytes], listed: Entries) -> None:
        level, index = listed.level, listed.index
        theirs = listed.pairs()
        for key in theirs:
            if node_of(slot_of(key), level) != index:
                raise WireError(f"sync: key {key[:40]!r} is outside node ({level}, {index})")
        if not theirs:
            self._ranges.append(slot_range(level, index))
            return
        held = None if level <= self.tree.depth else self._entries(level, index)
        count = self.tree.node(level, index).count if held is None else len(held)
        if count > self._list_at and level < MAX_LEVEL:
            summaries, _ = self._children(level, index)
            children.append(Children(level, index, b"".join(s.value for s in summaries), [s.count for s in summaries]))
            return
        mine = dict(held if held is not None else self._entries(level, index))
        self._keys.update(k for k, d in mine.items() if theirs.get(k) != d)
        want.extend(k for k, d in theirs.items() if mine.get(k) != d)

    # --- this side's nodes -------------------------------------------------------

    def _children(self, level: int, index: int) -> tuple[list[Summary], list[list[tuple[bytes, bytes]]] | None]:
        """The children of a node, and when they were summed from entries, those entries child by child."""
        if level < self.tree.depth:
            return list(self.tree.children(level, index)), None
        held = split(self._entries(level, index), level, index)
        return [summary_of(child) for child in held], held

    def _entries(self, level: int, index: int) -> list[tuple[bytes, bytes]]:
        return list(self._load(*slot_range(level, index)))


@attrs.frozen
class Exchange:
    """What one exchange between two in-process replicas cost, and what it found."""

    bytes: int  # CBOR payload bytes, both directions
    messages: int
    initiator: SyncResult  # what the initiator must send
    responder: SyncResult  # what the responder must send


def exchange(initiator: TreeSync, responder: TreeSync) -> Exchange:
    """Run an exchange in process, every message through the wire codec, counting its bytes."""
    msg: SyncBegin | SyncStep | None = initiator.begin()
    sides = (responder, initiator)
    total = messages = turn = 0
    while msg is not None:
        payload = wire.encode(msg)
        total += len(payload)
        messages += 1
        msg = sides[turn].receive(wire.decode(payload))
        turn ^= 1
    assert initiator.done and responder.done
    return Exchange(total, messages, initiator.result(), responder.result())

"""Hash trees over one partition's records, for anti-entropy between replicas.

Theory of operation. Every key has a *slot*, the first 32 bits of its
BLAKE2b hash (`slot_of`), and the record file keeps a partition's records in
slot order. The slot space is cut into a tree of fan-out 16: a node at
level `l` covers `2**(32 - 4*l)` consecutive slots (its *range*), the
`index`-th such run; level 0 is the root, level `MAX_LEVEL` (8) nodes are
single slots. A node is addressed by `(level, index)` alone, so two replicas
name the same node the same way whatever they keep in memory.

Node values. An entry (a key and its record's digest) contributes the
128-bit number `blake2b(digest + key)`; a node's value is the sum, modulo
2**128, of the contributions of every entry in its range, and its count is
how many entries that is. One definition for every level, rather than
hashing children above the leaves, because then a node's value does not
depend on where the tree is cut: `MerkleTree` keeps levels 0..`depth` in
memory (default 3, 4096 leaves, about 100 KiB) and the levels below are
summed on demand from the entries in a leaf's range (`split`, `summary_of`), which
lets the sync descend as deep as the differences need at any data size,
and lets replicas that keep different depths compare. The sum is
order-independent and invertible, so inserting, changing or deleting an
entry is one subtraction and one addition at each of `depth + 1` nodes. A
sum, not an XOR, because XOR is linear: anyone choosing records could
solve for a set of changes that leaves every XOR unchanged, while a sum
has no such shortcut.

Sans-I/O: plain objects and functions; the record file supplies entries.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterable

import attrs

__all__ = [
    "DEFAULT_DEPTH",
    "FANOUT",
    "MAX_LEVEL",
    "SLOT_BITS",
    "VALUE_BYTES",
    "ZERO",
    "MerkleTree",
    "Summary",
    "contribution",
    "node_of",
    "record_digest",
    "slot_of",
    "slot_range",
    "split",
    "summary_of",
]

SLOT_BITS = 32  # bits of a key's hash that place it in the tree; enough that two keys rarely share a slot
LEVEL_BITS = 4  # bits of the slot each level consumes
FANOUT = 1 << LEVEL_BITS  # children per node
MAX_LEVEL = SLOT_BITS // LEVEL_BITS  # deepest level: one slot per node
DEFAULT_DEPTH = 3  # levels kept in memory below the root: 4096 leaves, about 100 KiB per partition
DIGEST_BYTES = 16  # a record's digest: BLAKE2b-128, collisions out of reach
VALUE_BYTES = 16  # a node's value: a sum modulo 2**128
MODULUS = 1 << (8 * VALUE_BYTES)
ZERO = bytes(VALUE_BYTES)  # the value of an empty node


def slot_of(key: bytes) -> int:
    """The key's place in the slot space: its hash, as an int below 2**32."""
    return int.from_bytes(hashlib.blake2b(key, digest_size=SLOT_BITS // 8).digest(), "big")


def record_digest(record: bytes) -> bytes:
    """The 16-byte digest of a record's bytes, as the record file stores it."""
    return hashlib.blake2b(record, digest_size=DIGEST_BYTES).digest()


def contribution(key: bytes, digest: bytes) -> int:
    """What an entry adds to the value of every node whose range holds its slot."""
    # The digest has a fixed length, so digest + key is unambiguous.
    return int.from_bytes(hashlib.blake2b(digest + key, digest_size=VALUE_BYTES).digest(), "big")


def slot_range(level: int, index: int) -> tuple[int, int]:
    """The slots `[lo, hi)` that node `(level, index)` covers."""
    shift = SLOT_BITS - LEVEL_BITS * level
    return index << shift, (index + 1) << shift


def node_of(slot: int, level: int) -> int:
    """The index of the node at `level` whose range holds `slot`."""
    return slot >> (SLOT_BITS - LEVEL_BITS * level)


@attrs.frozen
class Summary:
    """A node as two replicas compare it: its value and how many entries it covers."""

    value: bytes  # VALUE_BYTES, big-endian; ZERO when count is 0
    count: int


def summary_of(entries: Iterable[tuple[bytes, bytes]]) -> Summary:
    """The value and count of a node that holds exactly these `(key, digest)` entries."""
    total = count = 0
    for key, digest in entries:
        total += contribution(key, digest)
        count += 1
    return Summary((total % MODULUS).to_bytes(VALUE_BYTES, "big"), count)


def split(entries: Iterable[tuple[bytes, bytes]], level: int, index: int) -> list[list[tuple[bytes, bytes]]]:
    """The entries of node `(level, index)` dealt out to its 16 children, keeping their order.

    Raises:
        ValueError: the node is at `MAX_LEVEL` (it has no children), or an
            entry lies outside its range.
    """
    if not 0 <= level < MAX_LEVEL:
        raise ValueError(f"level {level} has no children (levels 0..{MAX_LEVEL - 1} do)")
    children: list[list[tuple[bytes, bytes]]] = [[] for _ in range(FANOUT)]
    for key, digest in entries:
        slot = slot_of(key)
        if node_of(slot, level) != index:
            raise ValueError(f"key {key!r} (slot {slot:#010x}) is outside node ({level}, {index})")
        children[node_of(slot, level + 1) & (FANOUT - 1)].append((key, digest))
    return children


@attrs.define(eq=True)
class MerkleTree:
    """Levels 0..`depth` of one partition's hash tree, updated entry by entry.

    Build it from a scan of the partition (`build`), then keep it in step by
    passing every change the record file reports to `update`.
    """

    depth: int
    # Per level, the values (VALUE_BYTES each, node by node) and the counts.
    _values: list[bytearray]
    _counts: list[array]

    @classmethod
    def empty(cls, depth: int = DEFAULT_DEPTH) -> MerkleTree:
        """A tree of no entries.

        Raises:
            ValueError: `depth` is outside 0..`MAX_LEVEL`.
        """
        if not 0 <= depth <= MAX_LEVEL:
            raise ValueError(f"tree depth {depth} is outside 0..{MAX_LEVEL}")
        sizes = [FANOUT**level for level in range(depth + 1)]
        return cls(depth, [bytearray(VALUE_BYTES * n) for n in sizes], [array("q", bytes(8 * n)) for n in sizes])

    @classmethod
    def build(cls, entries: Iterable[tuple[bytes, bytes]], depth: int = DEFAULT_DEPTH) -> MerkleTree:
        """The tree of `(key, digest)` entries (each key once), in one pass: leaves first, then each level up once."""
        tree = cls.empty(depth)
        leaves = FANOUT**depth
        sums, counts = [0] * leaves, [0] * leaves
        for key, digest in entries:
            leaf = node_of(slot_of(key), depth)
            sums[leaf] += contribution(key, digest)
            counts[leaf] += 1
        for level in range(depth, -1, -1):
            tree._values[level][:] = b"".join((s % MODULUS).to_bytes(VALUE_BYTES, "big") for s in sums)
            tree._counts[level] = array("q", counts)
            sums = [sum(sums[i : i + FANOUT]) for i in range(0, len(sums), FANOUT)]
            counts = [sum(counts[i : i + FANOUT]) for i in range(0, len(counts), FANOUT)]
        return tree

    def copy(self) -> MerkleTree:
        """An independent tree with the same nodes."""
        return MerkleTree(self.depth, [bytearray(v) for v in self._values], [array("q", c) for c in self._counts])

    @property
    def root(self) -> Summary:
        """The whole partition's value and entry count."""
        return self.node(0, 0)

    def node(self, level: int, index: int) -> Summary:
        """Node `(level, index)`, for a level this tree keeps (0..`depth`).

        Raises:
            ValueError: the level is deeper than `depth` or the index outside it.
        """
        self._check(level, index)
        start = index * VALUE_BYTES
        return Summary(bytes(self._values[level][start : start + VALUE_BYTES]), self._counts[level][index])

    def children(self, level: int, index: int) -> tuple[Summary, ...]:
        """The 16 children of node `(level, index)`, for a level above `depth`.

        Raises:
            ValueError: the children's level is not kept, or the index is outside the level.
        """
        self._check(level + 1, index * FANOUT)
        values, counts = self._values[level + 1], self._counts[level + 1]
        first = index * FANOUT
        return tuple(
            Summary(bytes(values[(first + i) * VALUE_BYTES : (first + i + 1) * VALUE_BYTES]), counts[first + i])
            for i in range(FANOUT))

    def update(self, key: bytes, before: bytes | None, after: bytes | None) -> None:
        """Follow a change of `key`'s record digest from `before` to `after` (None: absent)."""
        if before == after:
            return
        delta = (contribution(key, after) if after is not None else 0) - (
            contribution(key, before) if before is not None else 0)
        step = (after is not None) - (before is not None)
        slot = slot_of(key)
        for level in range(self.depth + 1):
            index = node_of(slot, level)
            start = index * VALUE_BYTES
            values = self._values[level]
            value = (int.from_bytes(values[start : start + VALUE_BYTES], "big") + delta) % MODULUS
            values[start : start + VALUE_BYTES] = value.to_bytes(VALUE_BYTES, "big")
            self._counts[level][index] += step

    def _check(self, level: int, index: int) -> None:
        if not 0 <= level <= self.depth:
            raise ValueError(f"level {level} is not kept by a tree of depth {self.depth}")
        if not 0 <= index < FANOUT**level:
            raise ValueError(f"node index {index} is outside level {level} (0..{FANOUT**level - 1})")


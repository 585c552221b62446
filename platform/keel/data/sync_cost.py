"""What anti-entropy costs on the wire: replicas in memory, and the bytes one exchange trades.

`MemoryReplica` holds one partition's `(key, digest)` entries and their
hash tree in memory, standing in for a record file where the disk does not
matter (tests, benchmarks, the simulator). `sync_cost(keys, differences)`
builds two replicas that differ in exactly `differences` keys, runs one
exchange through the wire codec and reports its bytes next to what
sending every entry would have cost.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterable

import attrs

from keel import wire
from keel.data.merkle import DEFAULT_DEPTH, MerkleTree, slot_of
from keel.data.tree_sync import Entries, SyncResult, SyncStep, TreeSync, exchange

__all__ = ["MemoryReplica", "SyncCost", "sync_cost"]


class MemoryReplica:
    """One partition's entries in memory, in slot order, with their tree kept in step."""

    def __init__(self, entries: Iterable[tuple[bytes, bytes]] = (), *, depth: int = DEFAULT_DEPTH) -> None:
        self.digests = dict(entries)
        self._order = sorted((slot_of(k), k) for k in self.digests)
        self.tree = MerkleTree.build(self.digests.items(), depth)

    def copy(self) -> MemoryReplica:
        """An independent replica holding the same entries."""
        other = MemoryReplica.__new__(MemoryReplica)
        other.digests, other._order, other.tree = dict(self.digests), list(self._order), self.tree.copy()
        return other

    def put(self, key: bytes, digest: bytes | None) -> None:
        """Hold `digest` for `key` (None: delete it)."""
        before = self.digests.get(key)
        if digest is None:
            if before is not None:
                del self.digests[key]
                del self._order[bisect.bisect_left(self._order, (slot_of(key), key))]
        else:
            if before is None:
                bisect.insort(self._order, (slot_of(key), key))
            self.digests[key] = digest
        self.tree.update(key, before, digest)

    def load(self, lo: int, hi: int) -> list[tuple[bytes, bytes]]:
        """The entries with slots in `[lo, hi)`, in slot order (a `TreeSync` loader)."""
        start = bisect.bisect_left(self._order, (lo, b""))
        end = bisect.bisect_left(self._order, (hi, b""))
        return [(k, self.digests[k]) for _, k in self._order[start:end]]

    def sync(self, **options: int) -> TreeSync:
        """This replica's side of a new exchange."""
        return TreeSync(self.tree, self.load, **options)

    def sends(self, result: SyncResult) -> frozenset[bytes]:
        """Every key a sync result makes this replica send: its keys, and the keys it holds in its ranges."""
        ranged = (k for lo, hi in result.ranges for k, _ in self.load(lo, hi))
        return result.keys | frozenset(ranged)


@attrs.frozen
class SyncCost:
    """One exchange between replicas of `keys` entries that differ in `differences` keys."""

    keys: int
    differences: int
    bytes: int  # CBOR payload bytes of the exchange, both directions
    messages: int
    found: int  # differing keys the exchange found (each counted once, even when both sides send it)
    full_bytes: int  # bytes of one message listing every (key, digest) of one replica, for scale


def sync_cost(keys: int, differences: int, *, seed: int = 0) -> SyncCost:
    """Measure one exchange between two replicas of `keys` entries that differ in exactly `differences` keys.

    The differences are a mix, a third each: a key with another digest on
    the responder, a key the responder lacks, a key only the responder holds.
    """
    if not 0 <= differences <= keys:
        raise ValueError(f"differences {differences} must lie in 0..keys ({keys})")
    rng = random.Random(seed)
    a = MemoryReplica((b"key-%09d" % i, rng.randbytes(16)) for i in range(keys))
    b = a.copy()
    for n, i in enumerate(rng.sample(range(keys), differences)):
        if n % 3 == 0:
            b.put(b"key-%09d" % i, rng.randbytes(16))
        elif n % 3 == 1:
            b.put(b"key-%09d" % i, None)
        else:
            b.put(b"new-%09d" % i, rng.randbytes(16))
    run = exchange(a.sync(), b.sync())
    found = a.sends(run.initiator) | b.sends(run.responder)
    listing = Entries.of(0, 0, sorted(a.digests.items()))
    full = len(wire.encode(SyncStep(entries=[listing])))
    return SyncCost(keys, differences, run.bytes, run.messages, len(found), full)

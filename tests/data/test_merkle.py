"""The hash tree: incremental updates agree with a rebuild, and a node's value does not depend on the depth kept."""

from __future__ import annotations

import random

import pytest

from keel.data.merkle import (
    FANOUT,
    MAX_LEVEL,
    VALUE_BYTES,
    ZERO,
    MerkleTree,
    Summary,
    node_of,
    slot_of,
    slot_range,
    split,
    summary_of,
)


def _random_entries(rng: random.Random, n: int) -> dict[bytes, bytes]:
    return {b"key-%d" % rng.randrange(10 * n + 1): rng.randbytes(16) for _ in range(n)}


@pytest.mark.seeds(20)
def test_incremental_updates_give_the_tree_a_rebuild_gives(seed):
    rng = random.Random(seed)
    depth = rng.choice([0, 1, 2, 3])
    held = _random_entries(rng, rng.randrange(0, 400))
    tree = MerkleTree.build(held.items(), depth)
    for step in range(600):
        key = b"key-%d" % rng.randrange(500)
        before = held.get(key)
        after = None if rng.random() < 0.3 else rng.choice([rng.randbytes(16), before or rng.randbytes(16)])
        tree.update(key, before, after)
        if after is None:
            held.pop(key, None)
        else:
            held[key] = after
        if step % 50 == 0 or step == 599:
            assert tree == MerkleTree.build(held.items(), depth), f"after step {step}"
    assert tree.root.count == len(held)


def test_inserting_then_deleting_everything_leaves_an_empty_tree():
    rng = random.Random(3)
    held = _random_entries(rng, 300)
    tree = MerkleTree.empty(2)
    for key, digest in held.items():
        tree.update(key, None, digest)
    assert tree == MerkleTree.build(held.items(), 2)
    for key, digest in held.items():
        tree.update(key, digest, None)
    assert tree == MerkleTree.empty(2) and tree.root == Summary(ZERO, 0)


@pytest.mark.seeds(5)
def test_a_nodes_value_is_the_same_at_any_depth_kept(seed):
    rng = random.Random(seed)
    held = sorted(_random_entries(rng, 500).items(), key=lambda e: (slot_of(e[0]), e[0]))
    shallow, deep = MerkleTree.build(held, 1), MerkleTree.build(held, 3)
    for level in range(2):
        for index in range(FANOUT**level):
            lo, hi = slot_range(level, index)
            inside = [e for e in held if lo <= slot_of(e[0]) < hi]
            assert shallow.node(level, index) == deep.node(level, index) == summary_of(inside)
    # Below the kept levels, the same node summed from entries: what the sync computes on demand.
    index = node_of(slot_of(held[0][0]), 1)
    lo, hi = slot_range(1, index)
    children = split([e for e in held if lo <= slot_of(e[0]) < hi], 1, index)
    assert [summary_of(c) for c in children] == list(deep.children(1, index))


def test_a_parents_value_is_the_sum_of_its_childrens():
    rng = random.Random(7)
    tree = MerkleTree.build(_random_entries(rng, 2000).items(), 3)
    for level in range(3):
        for index in {0, min(5, FANOUT**level - 1), FANOUT**level - 1}:
            kids = tree.children(level, index)
            total = sum(int.from_bytes(k.value, "big") for k in kids) % 2 ** (8 * VALUE_BYTES)
            assert tree.node(level, index) == Summary(total.to_bytes(VALUE_BYTES, "big"), sum(k.count for k in kids))


def test_any_changed_digest_changes_the_root():
    held = {b"k%d" % i: bytes([i]) * 16 for i in range(100)}
    root = MerkleTree.build(held.items()).root
    for key in list(held)[:20]:
        changed = dict(held)
        changed[key] = b"\xff" * 16
        assert MerkleTree.build(changed.items()).root.value != root.value
    assert MerkleTree.build(list(held.items())[1:]).root.count == 99


def test_addresses_and_depths_out_of_range_are_refused():
    tree = MerkleTree.empty(2)
    with pytest.raises(ValueError, match="not kept"):
        tree.node(3, 0)
    with pytest.raises(ValueError, match="outside level 1"):
        tree.node(1, 16)
    with pytest.raises(ValueError, match="not kept"):
        tree.children(2, 0)
    with pytest.raises(ValueError, match="outside"):
        MerkleTree.empty(MAX_LEVEL + 1)
    with pytest.raises(ValueError, match="no children"):
        split([], MAX_LEVEL, 0)
    key = b"somewhere"
    with pytest.raises(ValueError, match="outside node"):
        split([(key, ZERO)], 1, (node_of(slot_of(key), 1) + 1) % FANOUT)

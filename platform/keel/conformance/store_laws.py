"""The laws every store's records must keep, checked on records the store itself makes.

Replicas converge only if `merge` is a join: commutative, associative and
idempotent, so any replica that received the same records, in any order and
any number of times, holds the same record. `check_store` plays a small
history against a store: replicas with their own hybrid clocks apply the
store's `examples` (physical clocks drawn from a few values, so different
replicas issue timestamps with the same wall time, where tie-breaking bugs
live), and every record made or merged along the way goes into a pool. It
then checks, on records drawn from the pool:

- `merge(a, b) == merge(b, a)`, `merge(merge(a, b), c) == merge(a, merge(b, c))`
  and `merge(a, a) == a`, comparing canonical bytes (replicas compare records
  by the hash of their bytes, so equal meaning in different shapes is a
  violation too);
- merging is an inflation: `merge(a, b)` merged with `a` again is unchanged;
- the same updates delivered in different orders, with duplicates, end in the
  same record at every replica;
- every record survives the trip through its bytes (`decode(encode(r))`
  merges as `r` does) and passes the store's own `check_record`.

Each violation is one line naming the law, the seed and the records, so a
store author can replay it: `check_store(store, seed=...)`.
"""

from __future__ import annotations

import random
from typing import Any

from keel.data.hlc import HybridClock
from keel.data.store import ApplyContext, OpKind, Store, decode_record, encode_record

__all__ = ["check_store"]

_REPLICAS = ("r1", "r2", "r3")
_KEYS = 3
_MAX_REPORTED = 10


def check_store(store: Store, *, seed: int, writes: int = 60, draws: int = 300) -> list[str]:
    """The law violations `store` shows in the history drawn from `seed` (empty: none)."""
    rng = random.Random(seed)
    _check_examples(store)
    pool, updates = _play(store, rng, writes)
    bad: list[str] = []

    def report(law: str, *records: Any) -> None:
        if len(bad) < _MAX_REPORTED:
            shown = "; ".join(_short(r) for r in records)
            bad.append(f"{law} (seed {seed}): {shown}")

    for record in pool:
        try:
            store.check_record(record)
            store.check_record(decode_record(encode_record(record), "record"))
        except ValueError as e:
            report(f"check_record refuses a record the store made ({e})", record)
        if _b(store.merge(record, record)) != _b(record):
            report("merge is not idempotent: merge(a, a) != a", record)
    for _ in range(draws):
        a, b, c = (rng.choice(pool) for _ in range(3))
        ab = store.merge(a, b)
        if _b(ab) != _b(store.merge(b, a)):
            report("merge is not commutative: merge(a, b) != merge(b, a)", a, b)
        if _b(store.merge(ab, c)) != _b(store.merge(a, store.merge(b, c))):
            report("merge is not associative: merge(merge(a, b), c) != merge(a, merge(b, c))", a, b, c)
        if _b(store.merge(ab, a)) != _b(ab):
            report("merge is not an inflation: merge(merge(a, b), a) != merge(a, b)", a, b)
    for key, made in updates.items():
        if len(made) < 2:
            continue
        finals = set()
        for _ in range(4):
            order = made + rng.sample(made, k=min(len(made), 3))  # with duplicates
            rng.shuffle(order)
            state = order[0]
            for record in order[1:]:
                state = store.merge(state, record)
            finals.add(_b(state))
        if len(finals) > 1:
            report(f"key {key}: the same {len(made)} updates in different orders end in different records", *made[:3])
    return bad


def _play(store: Store, rng: random.Random, writes: int) -> tuple[list[Any], dict[int, list[Any]]]:
    """Replicas applying the store's examples, sending some of what they make to each other."""
    clocks = {name: HybridClock(name) for name in _REPLICAS}
    held: dict[tuple[str, int], Any] = {}
    pool: list[Any] = []
    updates: dict[int, list[Any]] = {key: [] for key in range(_KEYS)}
    base = 1_700_000_000_000_000
    for _ in range(writes):
        name, key = rng.choice(_REPLICAS), rng.randrange(_KEYS)
        op = rng.choice(store.examples)
        physical = base + rng.randrange(3)  # few distinct instants: equal walls on different replicas
        stamp = clocks[name].now(physical)
        current = held.get((name, key))
        made = store.apply(current, op, ApplyContext(stamp=stamp, node=name))
        updates[key].append(made)
        here = made if current is None else store.merge(current, made)
        held[(name, key)] = here
        pool += [made, here]
        for other in _REPLICAS:  # some replicas hear of it now, the rest later or never
            if other != name and rng.random() < 0.5:
                clocks[other].observe(stamp, physical)
                theirs = held.get((other, key))
                held[(other, key)] = made if theirs is None else store.merge(theirs, made)
                pool.append(held[(other, key)])
    return pool, updates


def _check_examples(store: Store) -> None:
    if not any(store.operations.get(op.name) is OpKind.WRITE for op in store.examples):
        raise ValueError("the store's examples hold no write operation for the laws to play")
    for op in store.examples:
        store.check(op)


def _b(record: Any) -> bytes:
    return encode_record(record)


def _short(record: Any) -> str:
    text = repr(record)
    return text if len(text) <= 120 else text[:117] + "..."



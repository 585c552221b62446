"""A naive linearizability checker, straight from the definition, to test the fast one against.

No per-key split, no linked list, no minimal-call rule, no memo: it tries
every order of the operations that respects real time (an operation that
completed before another was invoked comes first), with each indeterminate
operation placed somewhere or nowhere, and replays each order on a plain
dict. Exponential, so only for a handful of operations.
"""

from __future__ import annotations

from collections.abc import Sequence

from keel.conformance.checkers import Operation

Store = tuple[tuple[object, object], ...]  # sorted (key, value) pairs; absent keys left out


def brute_force_linearizable(ops: Sequence[Operation]) -> bool:
    """Whether some real-time-respecting order of `ops` replays correctly on a key-value store."""
    live = [op for op in ops if op.completion != "fail"]  # a failed operation took no effect
    required = {i for i, op in enumerate(live) if op.completion == "ok"}

    def extend(placed: frozenset[int], store: Store) -> bool:
        if required <= placed:
            return True  # indeterminate operations left over never took effect
        for i, op in enumerate(live):
            if i in placed:
                continue
            if any(j not in placed and j != i and other.complete_time < op.invoke_time
                   for j, other in enumerate(live)):
                continue  # something that completed before `op` began is not placed yet
            after = apply(store, op)
            if after is not None and extend(placed | {i}, after):
                return True
        return False

    return extend(frozenset(), ())


def apply(store: Store, op: Operation) -> Store | None:
    """The store after `op`, or None when `op`'s recorded outcome is impossible here."""
    values = dict(store)
    current = values.get(op.key)
    if op.f == "read":
        if op.completion == "ok" and op.result != current:
            return None
    elif op.f == "write":
        values[op.key] = op.value
    elif op.f == "delete":
        values.pop(op.key, None)
    elif op.f == "cas":
        expected, new = op.value
        if current == expected:
            values[op.key] = new
        elif op.completion == "ok":
            return None
    else:
        raise AssertionError(f"no such operation: {op.f}")
    return tuple(sorted((k, v) for k, v in values.items() if v is not None))

"""Histories for the checker tests: a terse way to write them, and hypothesis strategies.

`executed()` draws histories that are linearizable by construction: a
sequential run of a key-value store, each operation then given a random
interval around the instant it ran, some reported `info` (and a few `info`
operations that never ran at all). `arbitrary()` draws small histories with
no such guarantee, for comparing against the brute-force reference.
"""

from __future__ import annotations

import math
import random
from typing import Any

from hypothesis import strategies as st

from keel.conformance.checkers import History, Operation

OP_S = 0.01  # seconds, the mean operation latency and think time of `concurrent_run`
GAP = 10  # time between two linearization points of a drawn execution
KEYS = ("a", "b")


def o(f: str, value: Any = None, *, at: float, to: float | None = None, result: Any = None,
      completion: str = "ok", key: str = "x", process: int = 0) -> Operation:
    """One operation, for writing histories by hand; `to` is None for an indeterminate one."""
    end = math.inf if to is None or completion == "info" else to
    return Operation(index=0, process=process, f=f, key=key, value=value, invoke_time=at,
                     completion="info" if to is None else completion, result=result, complete_time=end)


def history(*ops: Operation) -> History:
    """A history of hand-written operations, numbered by invocation time."""
    return History.of(ops)


def run(store: dict[str, Any], f: str, key: str, value: Any, *, happens: bool = True) -> tuple[str, Any]:
    """Run one operation on a plain dict (unless it `happens` not): its outcome and result."""
    current = store.get(key)
    if f == "read":
        return "ok", current
    if f == "cas" and value[0] != current:
        return "fail", None
    if happens and f == "delete":
        store.pop(key, None)
    elif happens:
        store[key] = value[1] if f == "cas" else value
    return "ok", None


@st.composite
def executed(draw: st.DrawFn, max_ops: int = 12, window: int = 3 * GAP, keys: tuple[str, ...] = KEYS) -> History:
    """A history recorded around a real sequential execution: always linearizable."""
    count = draw(st.integers(1, max_ops))
    store: dict[str, int] = {}
    ops = []
    fresh = iter(range(1, 10**9))
    for i in range(count):
        point = i * GAP
        key = draw(st.sampled_from(keys))
        f = draw(st.sampled_from(("read", "write", "cas", "delete")))
        begin = point - draw(st.integers(0, window))
        end = point + draw(st.integers(0, window))
        indeterminate = draw(st.integers(0, 9)) == 0
        value: Any = None
        if f == "write":
            value = next(fresh)
        elif f == "cas":
            value = (draw(st.sampled_from((store.get(key), None, *store.values()))), next(fresh))
        completion, result = run(store, f, key, value)
        if indeterminate and completion == "ok":
            ops.append(o(f, value, at=begin, key=key, process=i))
        else:
            ops.append(o(f, value, at=begin, to=end, result=result, completion=completion, key=key, process=i))
        if draw(st.integers(0, 19)) == 0:  # a timed-out write or delete that never reached the store
            lost = draw(st.sampled_from(("write", "delete")))
            ops.append(o(lost, next(fresh) if lost == "write" else None, at=begin, key=key, process=count + i))
    return History.of(ops)


@st.composite
def arbitrary(draw: st.DrawFn, max_ops: int = 7) -> History:
    """A small history with random operations, outcomes and intervals: often not linearizable."""
    ops = []
    values = st.sampled_from((None, 1, 2, 3))
    for i in range(draw(st.integers(1, max_ops))):
        f = draw(st.sampled_from(("read", "write", "cas", "delete")))
        begin = draw(st.integers(0, 20))
        end = begin + draw(st.integers(0, 10))
        completion = draw(st.sampled_from(("ok", "ok", "ok", "fail", "info")))
        value: Any = None
        if f == "write":
            value = draw(st.integers(1, 3))
        elif f == "cas":
            value = (draw(values), draw(st.integers(1, 3)))
        result = draw(values) if f == "read" and completion == "ok" else None
        to = None if completion == "info" else end
        ops.append(o(f, value, at=begin, to=to, result=result, completion=completion,
                     key=draw(st.sampled_from(KEYS)), process=i))
    return History.of(ops)


def concurrent_run(rng: random.Random, count: int, *, clients: int = 8, keys: int = 1,
                   timeouts: float = 0.002) -> History:
    """A long linearizable history: `clients` processes, one operation at a time each, over `keys` keys.

    Each operation takes effect at a random instant inside its interval; a
    fraction `timeouts` is recorded `info`, half of those never taking effect.
    """
    planned = []  # (instant it takes effect, invoke, complete, process, f, key)
    free_at = [0.0] * clients
    for _ in range(count):
        process = min(range(clients), key=free_at.__getitem__)
        invoke = free_at[process] + rng.expovariate(1 / OP_S)
        complete = invoke + rng.expovariate(1 / OP_S)
        free_at[process] = complete
        f = rng.choice(("read", "read", "write", "cas", "delete"))
        planned.append((rng.uniform(invoke, complete), invoke, complete, process, f, f"k{rng.randrange(keys)}"))
    store: dict[str, int] = {}
    ops = []
    for serial, (_, invoke, complete, process, f, key) in enumerate(sorted(planned)):
        timed_out = rng.random() < timeouts
        value: Any = None
        if f == "write":
            value = serial
        elif f == "cas":
            value = (rng.choice((store.get(key), store.get(key), serial - 1)), serial)
        completion, result = run(store, f, key, value, happens=not timed_out or rng.random() < 0.5)
        to = None if timed_out else complete
        ops.append(o(f, value, at=invoke, to=to, result=result, completion=completion, key=key, process=process))
    return History.of(ops)

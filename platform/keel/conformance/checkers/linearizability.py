"""Linearizability of client histories: the Wing & Gong search with Lowe's memoization.

A history is linearizable when every operation that took effect can be given
one instant inside its interval, so that the operations, run one at a time
in the order of those instants, do what a `Model` says. `fail` operations
took no effect and are dropped first; `info` ones may take effect at any
instant after their invocation, or never. The model splits the rest into
independent parts (a key each for the key-value store) and each part is
searched on its own (P-compositionality keeps each search small).

The search (Wing & Gong 1993, as Lowe 2017 improved it) walks a doubly linked
list of call and return entries sorted by time. Scanning from the front, it
may linearize only a *minimal* call: one before the first return entry still
in the list, since an operation cannot take effect after another one
completed unless it was invoked before that completion. Linearizing an
operation removes its entries and applies it to the model state; reaching a
return entry means that operation had to take effect by now and no choice so
far lets it, so the search backtracks: it undoes the last choice and tries
the next minimal call after it. Every configuration reached (which operations
are linearized, as a bitset in an int, and the model state) is remembered;
reaching one again prunes the branch (Lowe's cache), which is what keeps the
search near linear on real histories. Indeterminate operations have no return
entry: they never force a backtrack, and the search succeeds as soon as every
`ok` operation is placed (the rest never took effect).

Two reductions keep refutations (which must exhaust every configuration
before the violation) affordable. A read-only operation (`Model.read_only`)
that is minimal and fits the current state is placed at once, without
branching: in any linearization from here it could be moved to the front,
since nothing still open completed before it was invoked and it changes no
state. And indeterminate read-only operations are dropped, as they constrain
nothing; the model may drop more (the key-value model drops timed-out writes
whose value nobody read), since each indeterminate operation left in doubles
the configurations (placed or not) from its invocation on.

The search is a loop with an explicit stack, so ten thousand operations are
no recursion problem, and it stops at a budget (steps per part, and an
optional wall-clock deadline) with an "unknown" result rather than hang.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Iterable, Sequence

from keel.conformance.checkers.history import History, Operation
from keel.conformance.checkers.model import KeyValueModel, Model
from keel.conformance.checkers.verdict import KeyResult, Verdict, Violation

__all__ = ["DEFAULT_MAX_STEPS", "assert_linearizable", "check_linearizable"]

DEFAULT_MAX_STEPS = 10_000_000  # search steps per key, some 20 s; a 10,000-op refutation needs about 2M
DEADLINE_EVERY = 1 << 14  # steps between clock reads, so the deadline costs nothing measurable
SHOWN_BEFORE = 3  # operations completed before the stuck one that a violation keeps, latest last
HEAD = 0  # the list's front sentinel; op i has call entry 2i+1 and return entry 2i+2


def check_linearizable(
    history: History | Iterable[Operation],
    model: Model | None = None,
    *,
    max_steps: int = DEFAULT_MAX_STEPS,
    max_seconds: float | None = None,
) -> Verdict:
    """Check that `history` is linearizable for `model` (default: the key-value store).

    Args:
        history: a recorded `History`, or its operations.
        model: the sequential specification; `KeyValueModel()` when None.
        max_steps: search steps allowed per part (key) before it is "unknown".
        max_seconds: wall-clock budget for the whole check; None for none.

    Returns:
        A `Verdict`: `linearizable` is True, False (with the violation per
        failing key), or None when a budget ran out before an answer.

    Raises:
        ValueError: an operation the model does not know.
    """
    model = KeyValueModel() if model is None else model
    ops = history.operations if isinstance(history, History) else tuple(history)
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    results: list[KeyResult] = []
    budget = ""
    for key, part in model.partition([op for op in ops if op.completion != "fail"]):
        if deadline is not None and time.monotonic() > deadline:
            result = KeyResult(key=key, linearizable=None, operations=len(part), steps=0)
        else:
            result = _search(key, part, model, max_steps, deadline)
        if result.linearizable is None and not budget:
            budget = (f"the time budget ({max_seconds} s)" if result.steps < max_steps
                      else f"the step budget ({max_steps:,} per key)")
        results.append(result)
    return Verdict.of(tuple(results), budget)


def assert_linearizable(
    history: History | Iterable[Operation],
    model: Model | None = None,
    *,
    max_steps: int = DEFAULT_MAX_STEPS,
    max_seconds: float | None = None,
) -> Verdict:
    """Like `check_linearizable`, but raise unless the history is certainly linearizable.

    Raises:
        AssertionError: not linearizable, or unknown within the budget; the
            message is the verdict's one-paragraph explanation.
    """
    verdict = check_linearizable(history, model, max_steps=max_steps, max_seconds=max_seconds)
    if not verdict.linearizable:
        raise AssertionError(verdict.explain())
    return verdict


def _search(key: Hashable, part: Sequence[Operation], model: Model, max_steps: int,
            deadline: float | None) -> KeyResult:
    """The WGL search over one independent part; see the module docstring."""
    # An indeterminate read-only operation constrains nothing: its result is unknown.
    ops = [op for op in part if op.completion == "ok" or not model.read_only(op)]
    n = len(ops)
    tail = 2 * n + 2  # even, so the scan treats it as a return entry and backtracks there
    definite = [op.completion == "ok" for op in ops]
    read_only = [model.read_only(op) for op in ops]
    # Ties put calls first: operations with equal times count as concurrent,
    # the reading that rejects nothing a coarse clock cannot tell apart.
    entries = [(op.invoke_time, 0, i, 2 * i + 1) for i, op in enumerate(ops)]
    entries += [(op.complete_time, 1, i, 2 * i + 2) for i, op in enumerate(ops) if definite[i]]
    entries.sort()
    nxt = [tail] * (tail + 1)
    prv = [HEAD] * (tail + 1)
    before = HEAD
    for *_, entry in entries:
        nxt[before], prv[entry] = entry, before
        before = entry
    nxt[before], prv[tail] = tail, before

    step = model.step
    state = model.initial()
    linearized = 0  # bit i set: ops[i] is placed
    stack: list[tuple[int, Hashable, int, bool]] = []  # (op placed, state and bitset before it, forced)
    seen: set[tuple[int, Hashable]] = set()
    remaining = sum(definite)  # ok operations not yet placed; info ones may stay out
    steps = 0
    deepest: tuple[int, Hashable, list[int]] = (0, None, [])  # the dead end with the longest prefix
    entry = nxt[HEAD]
    fresh = True  # `state`, `linearized` were just reached: look for a read to force first
    while remaining:
        steps += 1
        if steps > max_steps or (deadline is not None and steps % DEADLINE_EVERY == 0
                                 and time.monotonic() > deadline):
            return KeyResult(key=key, linearizable=None, operations=n, steps=steps)
        dead_end = False
        if fresh:
            # Partial-order reduction: a minimal read-only operation that fits
            # now can go first in any linearization from here (moving it to the
            # front breaks no real-time order and changes no state), so place
            # it without branching; if that fails, this configuration fails.
            fresh = False
            scan = entry
            while scan & 1 and not (read_only[scan >> 1] and step(state, ops[scan >> 1])[0]):
                scan = nxt[scan]
            if scan & 1:
                i = scan >> 1
                bits = linearized | (1 << i)
                if (bits, state) in seen:
                    dead_end = True  # explored before, without success
                else:
                    seen.add((bits, state))
                    stack.append((i, state, linearized, True))
                    _lift(scan, definite[i], nxt, prv)
                    remaining -= definite[i]
                    linearized = bits
                    entry = nxt[HEAD]
                    fresh = True
                    continue
        if not dead_end and entry & 1:  # a minimal call: try to place it now
            i = entry >> 1
            if not read_only[i]:  # a fitting read would have been forced above
                accepted, after = step(state, ops[i])
                bits = linearized | (1 << i)
                if accepted and (bits, after) not in seen:
                    seen.add((bits, after))
                    stack.append((i, state, linearized, False))
                    _lift(entry, definite[i], nxt, prv)
                    remaining -= definite[i]
                    state, linearized = after, bits
                    entry = nxt[HEAD]
                    fresh = True
                    continue
            entry = nxt[entry]
            continue
        # A return entry: its operation had to be placed by now, and no choice
        # left from here places it. Undo choices back to the last one made by
        # branching (a forced one had no alternative) and try the next call.
        if not dead_end and (not deepest[0] or len(stack) > len(deepest[2])):
            deepest = (entry, state, [i for i, *_ in stack])
        forced = True
        while forced:
            if not stack:
                violation = _violation(key, ops, model, *deepest)
                return KeyResult(key=key, linearizable=False, operations=n, steps=steps, violation=violation)
            i, state, linearized, forced = stack.pop()
            _unlift(2 * i + 1, definite[i], nxt, prv)
            remaining += definite[i]
        entry = nxt[2 * i + 1]
    order = tuple(ops[i] for i, *_ in stack)
    return KeyResult(key=key, linearizable=True, operations=n, steps=steps, order=order)


def _lift(call: int, returns: bool, nxt: list[int], prv: list[int]) -> None:
    """Unlink an operation's call entry and, if it has one, its return entry (call + 1)."""
    nxt[prv[call]], prv[nxt[call]] = nxt[call], prv[call]
    if returns:
        ret = call + 1
        nxt[prv[ret]], prv[nxt[ret]] = nxt[ret], prv[ret]


def _unlift(call: int, returns: bool, nxt: list[int], prv: list[int]) -> None:
    """Undo `_lift`: the unlinked entries kept their neighbours, relinked in reverse order."""
    if returns:
        ret = call + 1
        nxt[prv[ret]] = prv[nxt[ret]] = ret
    nxt[prv[call]] = prv[nxt[call]] = call


def _violation(key: Hashable, ops: Sequence[Operation], model: Model, entry: int, state: Hashable,
               prefix: list[int]) -> Violation:
    """The deepest dead end in words: the prefix placed, the operation stuck, its neighbours in time.

    Built once, after the search, since finding the neighbours scans every operation.
    """
    stuck = ops[(entry - 2) >> 1]
    before = sorted((op for op in ops if op.complete_time < stuck.invoke_time), key=lambda op: op.complete_time)
    concurrent = [op for op in ops if op is not stuck
                  and op.invoke_time <= stuck.complete_time and stuck.invoke_time <= op.complete_time]
    return Violation(key=key, stuck=stuck, prefix=(ops[i] for i in prefix), state=state,
                     state_text=model.describe(state), before=before[-SHOWN_BEFORE:], concurrent=concurrent)

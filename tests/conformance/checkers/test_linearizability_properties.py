"""The checker against the definition: generated histories, a brute-force reference, long runs."""

from __future__ import annotations

import random
import time

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel.conformance.checkers import History, KeyValueModel, Operation, assert_linearizable, check_linearizable

from .histories import arbitrary, concurrent_run, executed
from .reference import brute_force_linearizable

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def replays(order: tuple[Operation, ...]) -> bool:
    """Whether `order` respects real time and satisfies the model."""
    model = KeyValueModel()
    state = model.initial()
    for op in order:
        accepted, state = model.step(state, op)
        if not accepted:
            return False
    position = {op.index: n for n, op in enumerate(order)}
    for a in order:
        for b in order:
            if a.complete_time < b.invoke_time and position[a.index] > position[b.index]:
                return False
    return True


@PROPERTY
@given(recorded=executed())
def test_a_history_recorded_around_a_sequential_run_is_linearizable(recorded: History):
    verdict = check_linearizable(recorded)
    assert verdict.linearizable, verdict.explain()
    for result in verdict.keys:
        part = tuple(op for op in recorded.operations if op.key == result.key)
        assert replays(result.order)
        assert {op.index for op in part if op.completion == "ok"} <= {op.index for op in result.order}


@PROPERTY
@given(recorded=st.one_of(arbitrary(), executed(max_ops=7)))
def test_the_checker_agrees_with_brute_force_on_small_histories(recorded: History):
    assert check_linearizable(recorded).linearizable == brute_force_linearizable(recorded.operations)


@PROPERTY
@given(recorded=executed(max_ops=7), data=st.data())
def test_the_checker_agrees_with_brute_force_on_small_corrupted_runs(recorded: History, data: st.DataObject):
    """One operation of a correct run changed (its result, value or outcome): often no longer linearizable."""
    ops = list(recorded.operations)
    victim = data.draw(st.sampled_from(ops))
    change = data.draw(st.sampled_from(("result", "value", "completion")))
    if change == "result":
        victim = attrs.evolve(victim, result=data.draw(st.sampled_from((None, 1, 2, 3))))
    elif change == "value" and victim.f == "cas":
        victim = attrs.evolve(victim, value=(data.draw(st.sampled_from((None, 1, 2))), victim.value[1]))
    elif change == "value" and victim.f == "write":
        victim = attrs.evolve(victim, value=data.draw(st.sampled_from((1, 2, 3))))
    elif victim.completion == "ok":
        victim = attrs.evolve(victim, completion="fail")
    ops[victim.index] = victim
    corrupted = History(ops)
    assert check_linearizable(corrupted).linearizable == brute_force_linearizable(corrupted.operations)


@pytest.mark.conformance
@pytest.mark.seeds(5)
def test_concurrent_runs_with_many_timeouts_are_linearizable(seed):
    assert_linearizable(concurrent_run(random.Random(seed), 500, clients=6, keys=3, timeouts=0.05))


def test_ten_thousand_concurrent_operations_on_one_key_are_checked_in_seconds(seed):
    recorded = concurrent_run(random.Random(seed), 10_000, clients=8, keys=1)
    started = time.perf_counter()
    verdict = check_linearizable(recorded)
    elapsed = time.perf_counter() - started
    print(f"10,000 ops on one key, linearizable: {elapsed:.2f} s, {verdict.steps:,} steps")
    assert verdict.linearizable, verdict.explain()


def test_a_stale_read_late_in_ten_thousand_operations_is_found(seed):
    recorded = concurrent_run(random.Random(seed), 10_000, clients=8, keys=1)
    ops = list(recorded.operations)
    reads = [op for op in ops if op.f == "read" and op.completion == "ok" and op.result is not None]
    target = reads[len(reads) * 9 // 10]
    old = [op for op in ops if op.f == "write" and op.completion == "ok" and op.complete_time < target.invoke_time - 1]
    ops[target.index] = attrs.evolve(target, result=old[-1].value)
    started = time.perf_counter()
    verdict = check_linearizable(History(ops))
    elapsed = time.perf_counter() - started
    print(f"10,000 ops on one key, one stale read: {elapsed:.2f} s, {verdict.steps:,} steps")
    assert verdict.linearizable is False
    assert verdict.violation is not None and verdict.violation.stuck.index == target.index


def test_a_long_sequential_history_needs_no_recursion():
    recorded = History()
    for i in range(20_000):
        handle = recorded.invoke(0, "write" if i % 2 == 0 else "read", "k", i if i % 2 == 0 else None, time=float(i))
        recorded.ok(handle, None if i % 2 == 0 else i - 1, time=i + 0.5)
    assert check_linearizable(recorded).linearizable

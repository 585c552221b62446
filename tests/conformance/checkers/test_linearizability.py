"""The linearizability checker on small histories written by hand, and its budget."""

from __future__ import annotations

import pytest

from keel.conformance.checkers import History, KeyValueModel, Operation, assert_linearizable, check_linearizable

from .histories import history, o


def verdict_of(*ops: Operation) -> bool | None:
    return check_linearizable(history(*ops)).linearizable


def test_sequential_operations_that_read_what_was_written_are_linearizable():
    assert verdict_of(
        o("read", at=0, to=1, result=None),
        o("write", 1, at=2, to=3),
        o("read", at=4, to=5, result=1),
        o("cas", (1, 2), at=6, to=7),
        o("read", at=8, to=9, result=2),
    )


@pytest.mark.parametrize("seen", [1, 2])
def test_overlapping_writes_may_take_effect_in_either_order(seen):
    assert verdict_of(
        o("write", 1, at=0, to=10, process=1),
        o("write", 2, at=1, to=9, process=2),
        o("read", at=11, to=12, result=seen, process=3),
    )


def test_a_read_overlapping_a_write_may_see_the_old_or_the_new_value():
    for seen in (None, 1):
        assert verdict_of(o("write", 1, at=0, to=10, process=1), o("read", at=2, to=3, result=seen, process=2))


def test_stale_read_after_a_completed_write_is_rejected():
    """A read that starts after a write completed must not return the value the write replaced."""
    verdict = check_linearizable(history(
        o("write", 1, at=0, to=1, process=1),
        o("write", 2, at=2, to=3, process=1),
        o("read", at=4, to=5, result=1, process=2),
    ))
    assert verdict.linearizable is False
    violation = verdict.violation
    assert violation is not None and violation.key == "x"
    assert (violation.stuck.f, violation.stuck.result) == ("read", 1)
    assert [op.value for op in violation.before] == [1, 2]
    assert "read x -> 1" in verdict.explain() and "write x 2, ok over [2.000000, 3.000000]" in verdict.explain()


def test_lost_write_never_seen_by_later_reads_is_rejected():
    """An acknowledged write must be visible to reads that start after it, not the older value."""
    assert verdict_of(
        o("write", 1, at=0, to=1, process=1),
        o("read", at=2, to=3, result=1, process=2),
        o("write", 2, at=4, to=5, process=1),
        o("read", at=6, to=7, result=1, process=2),
        o("read", at=8, to=9, result=1, process=3),
    ) is False


def test_two_successful_cas_from_the_same_expected_value_are_rejected():
    """Only one of two concurrent cas(0 -> ...) can see 0: the other must fail."""
    assert verdict_of(
        o("write", 0, at=0, to=1),
        o("cas", (0, 1), at=2, to=10, process=1),
        o("cas", (0, 2), at=3, to=11, process=2),
    ) is False
    assert verdict_of(
        o("write", 0, at=0, to=1),
        o("cas", (0, 1), at=2, to=10, process=1),
        o("cas", (0, 2), at=3, to=11, process=2, completion="fail"),
    )


def test_an_indeterminate_write_may_take_effect_late():
    """A timed-out write may land long after its client gave up."""
    assert verdict_of(
        o("write", 1, at=0, to=1, process=1),
        o("write", 2, at=2, process=2),  # info: no completion
        o("read", at=3, to=4, result=1, process=3),
        o("read", at=50, to=51, result=2, process=3),
    )


def test_an_indeterminate_write_may_never_take_effect():
    assert verdict_of(
        o("write", 1, at=0, to=1, process=1),
        o("write", 2, at=2, process=2),
        o("read", at=50, to=51, result=1, process=3),
    )


def test_an_indeterminate_write_cannot_take_effect_before_it_was_invoked():
    assert verdict_of(
        o("read", at=0, to=1, result=2, process=1),
        o("write", 2, at=2, process=2),
    ) is False


def test_an_indeterminate_write_takes_effect_once():
    """After a later write overwrote it, the timed-out value cannot come back."""
    assert verdict_of(
        o("write", 1, at=0, process=1),
        o("read", at=2, to=3, result=1, process=2),
        o("write", 2, at=4, to=5, process=2),
        o("read", at=6, to=7, result=1, process=2),
    ) is False


def test_a_failed_cas_claimed_to_have_taken_effect_is_rejected():
    """A cas that failed changed nothing, so its new value cannot be read."""
    assert verdict_of(
        o("write", 1, at=0, to=1),
        o("cas", (1, 5), at=2, to=3, completion="fail"),
        o("read", at=4, to=5, result=5),
    ) is False


def test_an_indeterminate_cas_may_have_taken_effect():
    assert verdict_of(
        o("write", 1, at=0, to=1),
        o("cas", (1, 5), at=2),
        o("read", at=4, to=5, result=5),
    )


def test_failed_and_indeterminate_reads_constrain_nothing():
    assert verdict_of(
        o("write", 1, at=0, to=1),
        o("read", at=2, to=3, result=7, completion="fail"),
        o("read", at=4, result=8),
        o("read", at=5, to=6, result=1),
    )


def test_a_delete_makes_the_key_read_absent_and_cas_from_absent_succeed():
    assert verdict_of(
        o("write", 1, at=0, to=1),
        o("delete", at=2, to=3),
        o("read", at=4, to=5, result=None),
        o("cas", (None, 2), at=6, to=7),
        o("read", at=8, to=9, result=2),
    )
    assert verdict_of(o("write", 1, at=0, to=1), o("delete", at=2, to=3), o("read", at=4, to=5, result=1)) is False


def test_keys_are_checked_independently_and_the_violation_names_its_key():
    verdict = check_linearizable(history(
        o("write", 1, at=0, to=1, key="a"),
        o("write", 2, at=0, to=1, key="b"),
        o("read", at=2, to=3, result=1, key="a"),
        o("read", at=2, to=3, result=1, key="b"),
    ))
    assert verdict.linearizable is False
    assert [(k.key, k.linearizable) for k in verdict.keys] == [("a", True), ("b", False)]
    assert verdict.violation is not None and verdict.violation.key == "b"


def test_operations_with_equal_times_count_as_concurrent():
    assert verdict_of(o("write", 1, at=0, to=5), o("read", at=5, to=6, result=None))


def test_a_linearizable_verdict_carries_a_witness_order():
    verdict = check_linearizable(history(
        o("write", 1, at=0, to=10, process=1),
        o("write", 2, at=1, to=9, process=2),
        o("read", at=11, to=12, result=1, process=3),
    ))
    assert [op.value for op in verdict.keys[0].order if op.f == "write"] == [2, 1]


def test_assert_linearizable_raises_assertion_error_with_the_explanation():
    stale = history(o("write", 1, at=0, to=1), o("write", 2, at=2, to=3), o("read", at=4, to=5, result=1))
    with pytest.raises(AssertionError, match=r"^not linearizable: key 'x' .* stuck at process 0 read x -> 1"):
        assert_linearizable(stale)
    assert assert_linearizable(history(o("write", 1, at=0, to=1))).linearizable


def test_the_recorder_feeds_the_checker():
    recorded = History()
    w = recorded.invoke(1, "write", "k", 3, time=0.0)
    r = recorded.invoke(2, "read", "k", time=0.5)
    recorded.ok(w, time=1.0)
    recorded.ok(r, 3, time=1.5)
    c = recorded.invoke(1, "cas", "k", [3, 4], time=2.0)
    recorded.info(c, "timeout", time=3.0)
    assert check_linearizable(recorded).linearizable


def test_an_unknown_operation_is_a_value_error():
    with pytest.raises(ValueError, match="f 'incr': the key-value model knows read, write, cas, delete"):
        check_linearizable(history(o("incr", 1, at=0, to=1)))


def pathological(writes: int) -> History:
    """Concurrent writes, then a read of a value none wrote: refuting it visits every subset."""
    ops = [o("write", v, at=0, to=100, process=v) for v in range(1, writes + 1)]
    return history(*ops, o("read", at=200, to=201, result=999, process=0))


def test_a_search_that_exceeds_its_step_budget_is_unknown_not_a_violation():
    verdict = check_linearizable(pathological(20), max_steps=10_000)
    assert verdict.linearizable is None
    assert verdict.unknown_keys == ("x",) and verdict.violation is None
    assert "unknown" in verdict.explain() and "step budget (10,000 per key)" in verdict.explain()
    with pytest.raises(AssertionError, match="linearizability unknown"):
        assert_linearizable(pathological(20), max_steps=10_000)


def test_a_search_that_exceeds_its_time_budget_is_unknown():
    verdict = check_linearizable(pathological(24), max_seconds=0.05)
    assert verdict.linearizable is None and "time budget (0.05 s)" in verdict.explain()


def test_a_small_pathological_history_is_refuted_within_the_budget():
    assert check_linearizable(pathological(8)).linearizable is False


def test_a_violation_outweighs_an_unknown_key():
    ops = [*pathological(20).operations, o("write", 1, at=0, to=1, key="y"), o("read", at=2, to=3, result=2, key="y")]
    verdict = check_linearizable(History.of(ops), max_steps=10_000)
    assert verdict.linearizable is False and verdict.unknown_keys == ("x",)


class Counter:
    """A model that is not the key-value store: one counter, `add` n, `get` reads it."""

    def initial(self) -> int:
        return 0

    def step(self, state: int, op: Operation) -> tuple[bool, int]:
        if op.f == "add":
            return True, state + op.value
        return op.result == state, state

    def read_only(self, op: Operation) -> bool:
        return op.f == "get"

    def partition(self, ops):
        return [("counter", list(ops))]

    def describe(self, state: int) -> str:
        return f"the counter is {state}"


def test_another_model_plugs_into_the_same_search():
    adds = [o("add", 1, at=0, to=10, process=1), o("add", 2, at=0, to=10, process=2)]
    assert check_linearizable(history(*adds, o("get", at=11, to=12, result=3)), Counter()).linearizable
    verdict = check_linearizable(history(*adds, o("get", at=11, to=12, result=2)), Counter())
    assert verdict.linearizable is False and "the counter is 3" in verdict.explain()

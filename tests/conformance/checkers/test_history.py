"""The history recorder and its operations."""

from __future__ import annotations

import math

import pytest

from keel.conformance.checkers import History, Operation


def test_an_operation_never_completed_counts_as_indeterminate():
    history = History()
    handle = history.invoke(1, "write", "k", 5, time=1.0)
    op = history.operations[handle.index]
    assert (op.completion, op.complete_time) == ("info", math.inf)
    assert history.open_operations() == (op,)


def test_completions_record_outcome_result_and_time():
    history = History()
    read = history.invoke(1, "read", "k", time=0.0)
    cas = history.invoke(2, "cas", "k", [1, 2], time=0.1)
    timed_out = history.invoke(3, "write", "k", 9, time=0.2)
    history.ok(read, 7, time=0.5)
    history.fail(cas, time=0.6)
    history.info(timed_out, "deadline exceeded", time=0.7)
    read_op, cas_op, write_op = history.operations
    assert (read_op.completion, read_op.result, read_op.complete_time) == ("ok", 7, 0.5)
    assert (cas_op.completion, cas_op.value, cas_op.complete_time) == ("fail", (1, 2), 0.6)
    assert (write_op.completion, write_op.complete_time) == ("info", math.inf)
    assert history.open_operations() == ()


def test_a_process_runs_one_operation_at_a_time():
    history = History()
    history.invoke(1, "read", "k", time=0.0)
    with pytest.raises(ValueError, match="process 1 invoked write with its operation 0 still open"):
        history.invoke(1, "write", "k", 2, time=0.1)


def test_an_operation_completes_once_and_not_before_its_invocation():
    history = History()
    handle = history.invoke(1, "read", "k", time=1.0)
    with pytest.raises(ValueError, match="completed at 0.5, before its invoke at 1.0"):
        history.ok(handle, None, time=0.5)
    history.ok(handle, None, time=1.5)
    with pytest.raises(ValueError, match="is not open"):
        history.fail(handle, time=2.0)


def test_values_are_frozen_so_model_states_can_hold_them():
    op = Operation(index=0, process=1, f="write", key="k", value=[1, {"b": [2], "a": 1}], invoke_time=0.0)
    assert op.value == (1, (("a", 1), ("b", (2,))))
    hash(op.value)


def test_of_numbers_operations_in_invocation_order():
    late = Operation(index=7, process=1, f="read", invoke_time=5.0, completion="ok", complete_time=6.0)
    early = Operation(index=3, process=2, f="read", invoke_time=1.0, completion="ok", complete_time=2.0)
    assert [(op.index, op.invoke_time) for op in History.of([late, early]).operations] == [(0, 1.0), (1, 5.0)]


def test_an_operation_cannot_complete_before_it_began():
    with pytest.raises(ValueError, match="completed at 1.0, before its invocation at 2.0"):
        Operation(index=0, process=1, f="read", invoke_time=2.0, completion="ok", complete_time=1.0)


def test_describe_names_the_process_operation_values_and_interval():
    read = Operation(index=0, process=6, f="read", key="key7", invoke_time=21.5, completion="ok", result=3,
                     complete_time=21.75)
    cas = Operation(index=1, process=2, f="cas", key="k", value=[None, 4], invoke_time=1.0)
    assert read.describe() == "process 6 read key7 -> 3, ok over [21.500000, 21.750000]"
    assert cas.describe() == "process 2 cas k [null, 4], info over [1.000000, ...]"

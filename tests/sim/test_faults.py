"""Faults as data: validation, ordering, and what a schedule names."""

from __future__ import annotations

import pytest

from keel.sim import At, Calm, Crash, Cut, Delay, FaultSchedule, Heal, Loss, Partition, Restart, Skew


def test_partition_groups_must_not_overlap():
    with pytest.raises(ValueError, match="b is in two groups"):
        Partition((("a", "b"), ("b", "c")))


def test_partition_groups_are_normalised_for_comparison():
    assert Partition([["b", "a"], ["c"]]) == Partition((("a", "b"), ("c",)))


@pytest.mark.parametrize("build", [
    lambda: Loss(1.5),
    lambda: Loss(-0.1),
    lambda: Delay(0.2, 0.1),
    lambda: Skew("a", rate=0.0),
    lambda: At(-1.0, Heal()),
])
def test_out_of_range_faults_are_refused(build):
    with pytest.raises(ValueError):
        build()


def test_at_holds_only_faults():
    with pytest.raises(TypeError, match="is not a fault"):
        At(1.0, "crash a")


def test_schedule_orders_by_time_keeping_listed_order_among_equals():
    schedule = FaultSchedule((At(2.0, Heal()), At(1.0, Crash("a")), At(1.0, Restart("a")), At(0.5, Calm())))
    assert [type(e.fault) for e in schedule.events] == [Calm, Crash, Restart, Heal]
    assert (schedule + FaultSchedule((At(0.1, Heal()),))).events[0] == At(0.1, Heal())


def test_schedule_names_every_node_it_touches():
    schedule = FaultSchedule((At(1.0, Cut("a", "b")), At(2.0, Partition((("c",), ("d",)))), At(3.0, Skew("e")),
                              At(4.0, Loss(0.1))))
    assert schedule.nodes() == frozenset("abcde")
    assert schedule.describe().splitlines()[0] == "  1.000000  Cut(src='a', dst='b')"

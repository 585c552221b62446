"""Random and named fault schedules: seeded, well-formed, and safe to run."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel.sim import SCHEDULES, At, Calm, Crash, Cut, Delay, Duplicate, FaultSchedule, Heal, Loss
from keel.sim import Partition, Restart, SimConfig, Simulation, Skew, random_schedule

from .gossip import cluster

NODES = ("n1", "n2", "n3", "n4", "n5")


def replay_state(schedule: FaultSchedule) -> tuple[set[str], int, bool, bool, dict[str, Skew]]:
    """Walk a schedule: (down nodes, most down at once, links healed, network calm, last skew per node)."""
    down: set[str] = set()
    most = 0
    healed = calm = True
    skews: dict[str, Skew] = {}
    for event in schedule.events:
        fault = event.fault
        if isinstance(fault, Crash):
            down.add(fault.node)
        elif isinstance(fault, Restart):
            down.discard(fault.node)
        elif isinstance(fault, Skew):
            skews[fault.node] = fault
        elif isinstance(fault, (Partition, Cut, Heal)):
            healed = isinstance(fault, Heal)
        else:
            calm = isinstance(fault, Calm)
        most = max(most, len(down))
    return down, most, healed, calm, skews


@pytest.mark.seeds(5)
def test_random_schedule_is_a_function_of_its_seed(seed):
    first = random_schedule(random.Random(seed), NODES, 20.0)
    assert first == random_schedule(random.Random(seed), NODES, 20.0)
    assert first != random_schedule(random.Random(seed + 1), NODES, 20.0)


@pytest.mark.seeds(5)
def test_random_schedule_ends_every_fault_by_its_duration(seed):
    schedule = random_schedule(random.Random(seed), NODES, 20.0)
    assert schedule.events and all(0.0 <= e.time <= 20.0 for e in schedule.events)
    down, most, healed, calm, skews = replay_state(schedule)
    assert (down, healed, calm) == (set(), True, True)
    assert all(skew == Skew(node) for node, skew in skews.items())
    assert most <= 2, "at most a minority of five is down at once"


def test_random_schedule_mixes_every_kind_over_many_seeds():
    seen = {type(e.fault) for seed in range(20) for e in random_schedule(random.Random(seed), NODES, 20.0).events}
    assert seen == {Crash, Restart, Partition, Cut, Heal, Loss, Duplicate, Delay, Calm, Skew}


def test_random_schedule_draws_only_the_kinds_asked_for(seed):
    schedule = random_schedule(random.Random(seed), NODES, 20.0, kinds=("crash",), max_down=4, mean_gap=0.5)
    assert {type(e.fault) for e in schedule.events} == {Crash, Restart}
    assert replay_state(schedule)[1] > 2


def test_random_schedule_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="unknown kind 'flood'"):
        random_schedule(random.Random(0), NODES, 1.0, kinds=("flood",))


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_named_schedule_runs_and_ends_healed(name, seed):
    schedule = SCHEDULES[name](random.Random(seed), NODES[:3], 1.0)
    assert schedule.nodes() <= set(NODES[:3])
    down, _, healed, calm, _ = replay_state(schedule)
    assert (down, healed, calm) == (set(), True, True)
    sim = Simulation(seed, cluster(NODES[:3]), faults=schedule)
    sim.run(1.2)
    assert all(sim.node(n) is not None for n in NODES[:3])


node_ids = st.sampled_from(NODES[:3])
faults = st.one_of(
    st.builds(Crash, node_ids),
    st.builds(Restart, node_ids),
    st.builds(lambda nodes, cut: Partition((nodes[:cut], nodes[cut:])), st.permutations(NODES[:3]), st.integers(0, 3)),
    st.builds(Cut, node_ids, node_ids),
    st.just(Heal()),
    st.just(Calm()),
    st.builds(Loss, st.floats(0.0, 1.0)),
    st.builds(Duplicate, st.floats(0.0, 1.0)),
    st.builds(lambda a, b: Delay(min(a, b), max(a, b)), st.floats(0.0, 0.3), st.floats(0.0, 0.3)),
    st.builds(Skew, node_ids, st.floats(-5.0, 5.0), st.floats(0.25, 4.0)),
)
schedules = st.lists(st.builds(At, st.floats(0.0, 1.0), faults), max_size=12).map(FaultSchedule)


@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=schedules)
def test_any_schedule_runs_without_error_and_deterministically(schedule, seed):
    def run() -> str:
        config = SimConfig(tick_interval=0.05, fsync=(0.0, 0.02))
        sim = Simulation(seed, cluster(NODES[:3]), config=config, faults=schedule)
        sim.run(1.2)
        return sim.trace_hash()

    assert run() == run()

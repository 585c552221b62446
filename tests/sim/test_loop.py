"""The event loop: determinism, callbacks, checkers, observers and failure reports."""

from __future__ import annotations

import random

import pytest

from keel.sim import At, Crash, InvariantViolation, Kind, Output, Partition, SimConfig, Simulation, random_schedule

from .gossip import cluster

NODES = ("a", "b", "c")


def faulty_run(seed: int, duration: float = 1.5) -> Simulation:
    faults = random_schedule(random.Random(seed), NODES, duration)
    sim = Simulation(seed, cluster(NODES), config=SimConfig(loss=0.05, duplicate=0.05), faults=faults)
    sim.run(duration)
    return sim


@pytest.mark.conformance
@pytest.mark.seeds(3)
def test_same_seed_gives_same_trace_hash(seed):
    first, second = faulty_run(seed), faulty_run(seed)
    assert len(first.trace) == len(second.trace)
    assert first.trace_hash() == second.trace_hash()


def test_different_seeds_give_different_traces(seed):
    assert faulty_run(seed).trace_hash() != faulty_run(seed + 1).trace_hash()


def test_nodes_start_at_zero_and_tick_at_the_configured_interval(seed):
    sim = Simulation(seed, cluster(NODES), config=SimConfig(tick_interval=0.1))
    sim.run(1.0)
    starts = sim.trace.of(Kind.START)
    assert [(r.time, r.node, r.data) for r in starts] == [(0.0, n, (1, 0)) for n in NODES]
    for node_id in NODES:
        nows = sim.node(node_id).nows
        assert len(nows) in (10, 11)  # a random phase in the first interval, then every 0.1 s
        assert all(later - earlier == pytest.approx(0.1) for earlier, later in zip(nows, nows[1:]))
    assert sim.now == 1.0


def test_callback_runs_at_its_virtual_time_and_its_output_is_carried_out(seed):
    sim = Simulation(seed, cluster(NODES))
    seen = []
    sim.observe(lambda time, node_id, event: seen.append((time, node_id, event)))
    sim.at(0.25, lambda s: s.node("b").poke("hello"))
    sim.run(0.5)
    assert (0.25, "b", ("poked", "hello")) in seen
    calls = sim.trace.of(Kind.CALL)
    assert [r.time for r in calls] == [0.25]


def test_observers_see_every_event_in_trace_order(seed):
    sim = Simulation(seed, cluster(NODES))
    seen = []
    sim.observe(lambda time, node_id, event: seen.append((time, node_id, event)))
    sim.run(0.3)
    assert seen == [(r.time, r.node, r.data) for r in sim.trace.of(Kind.EVENT)]
    assert seen


def test_broken_invariant_names_seed_time_and_recent_trace(seed):
    sim = Simulation(seed, cluster(NODES))

    def nobody_hears_anything(s: Simulation) -> None:
        for node_id in s.node_ids:
            assert not s.node(node_id).heard, f"{node_id} heard {s.node(node_id).heard[0]}"

    sim.check(nobody_hears_anything)
    with pytest.raises(InvariantViolation) as caught:
        sim.run(1.0)
    violation = caught.value
    assert violation.seed == seed
    assert 0 < violation.time < 1.0
    assert f"simulation seed {seed} at t={violation.time:.6f}s" in str(violation)
    assert " heard (" in str(violation)
    assert "deliver" in str(violation)  # the trace tail shows the delivery that broke it
    assert isinstance(violation, AssertionError)


def test_node_exception_keeps_its_type_and_gains_the_seed(seed):
    class Fragile:
        def __init__(self, node_id, durable, rng):
            pass

        def tick(self, now):
            if now > 0.1:
                raise RuntimeError("engine bug")

        def receive(self, src, message):
            pass

        def poll(self):
            return Output()

    sim = Simulation(seed, {"solo": Fragile})
    with pytest.raises(RuntimeError, match="engine bug") as caught:
        sim.run(1.0)
    assert any(f"simulation seed {seed} at t=" in note for note in caught.value.__notes__)


def test_faults_and_callbacks_cannot_be_scheduled_in_the_past(seed):
    sim = Simulation(seed, cluster(NODES))
    sim.run(1.0)
    with pytest.raises(ValueError, match="before now"):
        sim.at(0.5, lambda s: None)
    with pytest.raises(ValueError, match="before now"):
        sim.schedule([At(0.5, Crash("a"))])


def test_schedule_naming_an_unknown_node_is_refused(seed):
    with pytest.raises(ValueError, match="unknown node 'z'"):
        Simulation(seed, cluster(NODES), faults=[At(1.0, Partition((("a",), ("z",))))])


def test_sending_to_an_unknown_node_is_a_caller_bug(seed):
    sim = Simulation(seed, cluster(("a", "b")))
    sim.node("a").peers = ("b", "ghost")
    with pytest.raises(ValueError, match="no node 'ghost'"):
        sim.run(0.5)


def test_run_is_resumable_and_equals_one_long_run(seed):
    whole = faulty_run(seed, duration=1.0)
    pieces = Simulation(seed, cluster(NODES), config=SimConfig(loss=0.05, duplicate=0.05),
                        faults=random_schedule(random.Random(seed), NODES, 1.0))
    for until in (0.1, 0.35, 0.35, 0.9, 1.0):
        pieces.run(until)
    assert pieces.trace_hash() == whole.trace_hash()


class _Counter:
    """Counts what it received since its last poll, and reports that count at each poll."""

    def __init__(self) -> None:
        self.unpolled = 0

    def tick(self, now: float) -> None:
        pass

    def receive(self, src: str, message: object) -> None:
        self.unpolled += 1

    def poll(self) -> Output:
        seen, self.unpolled = self.unpolled, 0
        return Output(events=(seen,) if seen else ())


class _Burst:
    """Sends `n` messages to "sink" at once, on its first tick."""

    def __init__(self, n: int) -> None:
        self.n, self.sent = n, False

    def tick(self, now: float) -> None:
        pass

    def receive(self, src: str, message: object) -> None:
        pass

    def poll(self) -> Output:
        if self.sent:
            return Output()
        self.sent = True
        return Output(send=[("sink", i) for i in range(self.n)])


def _burst_run(seed: int, config: SimConfig) -> list[int]:
    sim = Simulation(seed, {"sink": lambda *_: _Counter(), "src": lambda *_: _Burst(20)}, config=config)
    seen: list[int] = []
    sim.observe(lambda time, node_id, event: seen.append(event))
    sim.run(0.5)
    return seen


def test_without_a_poll_lag_every_arrival_is_polled_alone(seed):
    assert _burst_run(seed, SimConfig()) == [1] * 20


def test_with_a_poll_lag_arrivals_within_it_are_received_before_one_poll(seed):
    """As a runtime that wakes one poller per burst of inputs: the node takes several before reporting."""
    seen = _burst_run(seed, SimConfig(delay=(0.001, 0.002), poll_lag=(0.002, 0.003)))
    assert sum(seen) == 20
    assert max(seen) > 1

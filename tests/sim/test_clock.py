"""Node clocks: skew and drift as nodes see them, never going backwards."""

from __future__ import annotations

import pytest

from keel.sim import At, Kind, SimConfig, Simulation, Skew
from keel.sim.clock import NodeClock

from .gossip import cluster

NODES = ("a", "b")


def test_clock_reads_offset_plus_rate_times_virtual_time():
    clock = NodeClock()
    assert clock.read(2.0) == 2.0
    clock.skew(offset=10.0, rate=0.5)
    assert clock.read(4.0) == 12.0
    assert clock.virtual_interval(0.01) == pytest.approx(0.02)


def test_clock_holds_still_rather_than_step_back():
    clock = NodeClock()
    assert clock.read(5.0) == 5.0
    clock.skew(offset=-3.0, rate=1.0)
    assert clock.read(6.0) == 5.0  # the new line reads 3.0
    assert clock.read(9.0) == 6.0


def test_clock_refuses_a_rate_that_stops_time():
    with pytest.raises(ValueError, match="above 0"):
        NodeClock().skew(offset=0.0, rate=0.0)


def test_skew_is_visible_in_the_skewed_nodes_now_only(seed):
    sim = Simulation(seed, cluster(NODES), config=SimConfig(tick_interval=0.1), faults=[At(1.0, Skew("a", 100.0, 2.0))])
    sim.run(2.0)
    ticks = {node: [(r.time, r.data) for r in sim.trace.of(Kind.TICK) if r.node == node] for node in NODES}
    late_a = [(t, now) for t, now in ticks["a"] if t > 1.0]
    assert all(now == pytest.approx(100.0 + 2.0 * t) for t, now in late_a)
    # Ticks follow the node's own clock: twice as fast, so twice as many per virtual second.
    assert len(late_a) in (19, 20, 21)
    assert all(now == t for t, now in ticks["b"])
    assert sim.local_time("a") == pytest.approx(104.0)
    assert sim.node("a").nows == [now for _, now in ticks["a"]]


def test_skew_back_in_time_never_makes_now_decrease(seed):
    sim = Simulation(seed, cluster(NODES), faults=[At(0.5, Skew("a", -0.3, 0.8)), At(1.0, Skew("a"))])
    sim.run(2.0)
    nows = sim.node("a").nows
    assert nows == sorted(nows)
    assert nows[-1] == pytest.approx(2.0, abs=0.011)


def test_looking_at_a_clock_does_not_change_what_the_node_reads_later():
    clock = NodeClock()
    clock.read(0.995)
    assert clock.peek(1.0) == 1.0
    clock.skew(offset=-0.5, rate=1.0)
    assert clock.read(1.005) == 0.995

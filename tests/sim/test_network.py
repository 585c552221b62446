"""The virtual network: loss, duplication, delay and reordering, partitions, cuts, heal."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from keel.sim import At, Calm, Cut, Delay, Heal, Kind, Loss, Partition, SimConfig, Simulation
from keel.sim.network import Network

from .gossip import cluster

NODES = ("a", "b", "c")


def deliveries(sim: Simulation, start: float = 0.0, end: float = float("inf")) -> set[tuple[str, str]]:
    """The (src, dst) links that delivered anything in [start, end)."""
    return {(r.peer, r.node) for r in sim.trace.of(Kind.DELIVER) if start <= r.time < end}


def drop_reasons(sim: Simulation) -> Counter[str]:
    return Counter(r.detail for r in sim.trace.of(Kind.DROP))


@pytest.mark.seeds(3)
def test_loss_drops_about_the_configured_fraction(seed):
    sim = Simulation(seed, cluster(NODES), config=SimConfig(loss=0.25))
    sim.run(2.0)
    lost = drop_reasons(sim)["loss"]
    sent = len(sim.trace.of(Kind.SEND))
    assert sent + lost > 1000
    assert 0.2 < lost / (sent + lost) < 0.3


@pytest.mark.seeds(3)
def test_duplication_delivers_some_messages_twice(seed):
    sim = Simulation(seed, cluster(NODES), config=SimConfig(duplicate=0.3))
    sim.run(2.0)
    sent = sim.trace.of(Kind.SEND)
    doubled = [r for r in sent if r.detail == "duplicated"]
    assert 0.25 < len(doubled) / len(sent) < 0.35
    arrivals = Counter((r.peer, r.node, r.data.seq) for r in sim.trace.of(Kind.DELIVER))
    assert max(arrivals.values()) == 2
    settled = [r for r in sent if r.time < 1.9]  # the rest may still be in flight
    copies = sum(2 if r.detail == "duplicated" else 1 for r in settled)
    assert sum(arrivals[(r.node, r.peer, r.data.seq)] for r in settled) == copies


def test_delay_stays_in_range_and_reorders_messages(seed):
    sim = Simulation(seed, cluster(NODES), config=SimConfig(delay=(0.001, 0.05)))
    sim.run(2.0)
    sent_at = {(r.node, r.peer, r.data.seq): r.time for r in sim.trace.of(Kind.SEND)}
    arrivals = [(r.peer, r.node, r.data.seq, r.time) for r in sim.trace.of(Kind.DELIVER)]
    for src, dst, seq, time in arrivals:
        assert 0.001 <= time - sent_at[(src, dst, seq)] <= 0.05
    heard = sim.node("b").heard
    from_a = [seq for src, seq in heard if src == "a"]
    assert from_a != sorted(from_a), "a 1-50 ms delay range with 10 ms ticks must reorder"


def test_symmetric_partition_blocks_both_ways_until_heal(seed):
    faults = [At(1.0, Partition((("a",), ("b", "c")))), At(2.0, Heal())]
    sim = Simulation(seed, cluster(NODES), faults=faults)
    sim.run(3.0)
    during = deliveries(sim, 1.0, 2.0)
    assert during == {("b", "c"), ("c", "b")}
    assert deliveries(sim, 2.1, 3.0) == {(s, d) for s in NODES for d in NODES if s != d}
    assert drop_reasons(sim)["partition"] > 0


def test_partition_swallows_messages_already_in_flight(seed):
    sim = Simulation(seed, cluster(NODES), config=SimConfig(delay=(0.05, 0.05)), faults=[At(1.0, Partition((("a",), ("b", "c"))))])
    sim.run(1.1)
    sent = {(r.node, r.peer, r.data.seq) for r in sim.trace.of(Kind.SEND)}
    swallowed = [r for r in sim.trace.of(Kind.DROP) if r.detail == "partition" and (r.node, r.peer, r.data.seq) in sent]
    assert swallowed and all(1.0 <= r.time <= 1.05 for r in swallowed)


def test_nodes_in_no_group_reach_everyone(seed):
    sim = Simulation(seed, cluster(NODES), faults=[At(0.0, Partition((("a",), ("b",))))])
    sim.run(1.0)
    assert deliveries(sim) == {("a", "c"), ("c", "a"), ("b", "c"), ("c", "b")}


def test_one_way_cut_blocks_one_direction_only(seed):
    sim = Simulation(seed, cluster(NODES), faults=[At(0.5, Cut("a", "b")), At(1.5, Heal())])
    sim.run(2.0)
    during = deliveries(sim, 0.5, 1.5)
    assert ("a", "b") not in during
    assert ("b", "a") in during and ("a", "c") in during
    assert ("a", "b") in deliveries(sim, 1.6, 2.0)
    assert drop_reasons(sim)["cut"] > 0


def test_loss_fault_then_calm_restores_the_baseline(seed):
    faults = [At(0.5, Loss(1.0)), At(0.5, Delay(0.2, 0.2)), At(1.5, Calm())]
    sim = Simulation(seed, cluster(NODES), config=SimConfig(delay=(0.001, 0.002)), faults=faults)
    sim.run(2.0)
    assert not [r for r in sim.trace.of(Kind.SEND) if 0.5 <= r.time < 1.5]
    late = [r for r in sim.trace.of(Kind.DELIVER) if r.time >= 1.6]
    assert late and drop_reasons(sim)["loss"] > 0


def test_fate_draws_nothing_for_a_blocked_link(seed):
    network = Network(SimConfig(loss=0.5))
    network.apply(Cut("a", "b"))
    rng = random.Random(seed)
    state = rng.getstate()
    fate = network.fate(rng, "a", "b")
    assert (fate.dropped, fate.delays) == ("cut", ())
    assert rng.getstate() == state
    assert network.blocked("b", "a") is None

"""Paxos clusters in the simulator under seeded faults: safety after every event, liveness once faults end."""

from __future__ import annotations

import random

import pytest

from keel.consensus import engine_cluster
from keel.sim import SimConfig, Simulation, random_schedule

from keel_consensus_paxos import PaxosOptions, create

from .cluster import Client, Watch, every, strike_leader

FAULTS_S = 4.0  # virtual seconds of random faults
LIVENESS_S = 4.0  # virtual seconds after the faults end by which a leader must commit what clients retry
WORK_STEP_S = 0.03  # seconds between client steps during the faults
RETRY_STEP_S = 0.2  # seconds between a waiting client's retries
SNAPSHOT_EVERY = 40  # applied slots between snapshots: several per run, so snapshots ship under faults
HUNT_S = (0.5, FAULTS_S - 1.0)  # virtual seconds within which the current leader is crashed, three times
LEADER_DOWN_S = (0.05, 0.6)  # seconds a crashed leader stays down; restarted well before the faults end
STICKY = PaxosOptions(snapshot_chunk=256)  # small chunks: a snapshot of a few KB travels in several messages
PLAIN = PaxosOptions(snapshot_chunk=256, sticky=False)  # no probe: more duels between proposers, the same safety


def run_cluster(seed: int, size: int, options: PaxosOptions = STICKY) -> tuple[Simulation, Watch, Client]:
    ids = tuple(f"n{i}" for i in range(1, size + 1))
    rng = random.Random(seed)
    faults = random_schedule(rng, ids, FAULTS_S)
    sim = Simulation(seed, engine_cluster(create, ids, snapshot_every=SNAPSHOT_EVERY, options=options),
                     config=SimConfig(wire_only=True), faults=faults)
    watch = Watch(sim)
    client = Client(sim, watch, random.Random(f"{seed}/client"))
    every(sim, 0.3, FAULTS_S, WORK_STEP_S, client.work)
    strike = strike_leader(random.Random(f"{seed}/hunter"), watch, LEADER_DOWN_S)
    for _ in range(3):
        sim.at(rng.uniform(*HUNT_S), strike)
    final = [f"final-{i}".encode() for i in range(5)]
    sim.at(FAULTS_S, lambda s: client.must_commit(final))
    every(sim, FAULTS_S, FAULTS_S + LIVENESS_S, RETRY_STEP_S, client.retry)
    sim.run(FAULTS_S + LIVENESS_S)
    return sim, watch, client


def check_recovered(sim: Simulation, watch: Watch, client: Client) -> None:
    assert not client.pending, f"not committed {LIVENESS_S} s after the faults ended: {sorted(client.pending)}"
    machines = {node: (sim.node(node).machine.index, sim.node(node).machine.digest) for node in sim.node_ids}
    assert len(set(machines.values())) == 1, f"replicas did not converge: {machines}"
    assert watch.leader() is not None
    assert watch.max_applied > SNAPSHOT_EVERY, "too little was chosen for snapshots to matter"


@pytest.mark.conformance
@pytest.mark.seeds(10)
@pytest.mark.parametrize("size", [3, 5])
def test_paxos_stays_safe_under_random_faults_and_recovers_once_they_end(seed, size):
    """Paxos Made Simple §2.2-§3 (one value per slot, chosen values never lost) and liveness with a stable leader.

    Crashes and restarts (the leader's among them), partitions, one-way
    cuts, loss, duplication, delay and clock skew, with snapshots shipping
    meanwhile and stickiness on; the checks run on every event. Once the
    faults end a leader emerges, commits what clients retry within
    LIVENESS_S, and every replica converges on one state.
    """
    check_recovered(*run_cluster(seed, size))


@pytest.mark.conformance
@pytest.mark.seeds(6)
def test_paxos_without_stickiness_stays_safe_under_random_faults(seed):
    """Paxos Made Simple §2.4: with any proposer free to outbid the leader, safety holds all the same."""
    check_recovered(*run_cluster(seed, 3, PLAIN))


def test_same_seed_gives_the_same_trace(seed):
    """Determinism: equal seeds give equal traces, so any failure replays from its seed."""
    first, _, _ = run_cluster(seed, 3)
    second, _, _ = run_cluster(seed, 3)
    assert first.trace_hash() == second.trace_hash()

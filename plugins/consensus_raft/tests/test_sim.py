"""Raft clusters in the simulator under seeded faults: safety after every event, liveness once faults end."""

from __future__ import annotations

import random

import pytest

from keel.consensus import engine_cluster
from keel.sim import SimConfig, Simulation, random_schedule

from keel_consensus_raft import RaftOptions, create

from .cluster import Client, Hunter, Watch, every

FAULTS_S = 4.0  # virtual seconds of random faults
LIVENESS_S = 4.0  # virtual seconds after the faults end by which a leader must commit what clients retry
WORK_STEP_S = 0.03  # seconds between client steps during the faults
RETRY_STEP_S = 0.2  # seconds between a waiting client's retries
SNAPSHOT_EVERY = 40  # applied entries between snapshots: several per run, so snapshots ship under faults
HUNT_S = (0.5, FAULTS_S - 1.0)  # virtual seconds within which the current leader is crashed, three times
LEADER_DOWN_S = (0.05, 0.6)  # seconds a crashed leader stays down; restarted well before the faults end
# Small chunks so a snapshot (a few KB of key-value pairs) travels in several InstallSnapshot messages.
THESIS = RaftOptions(snapshot_chunk=256)
BASIC = RaftOptions(snapshot_chunk=256, pre_vote=False, check_quorum=False)  # more elections, plain §5 rules


def run_cluster(seed: int, size: int, options: RaftOptions = THESIS) -> tuple[Simulation, Watch, Client]:
    ids = tuple(f"n{i}" for i in range(1, size + 1))
    rng = random.Random(seed)
    faults = random_schedule(rng, ids, FAULTS_S)
    sim = Simulation(seed, engine_cluster(create, ids, snapshot_every=SNAPSHOT_EVERY, options=options),
                     config=SimConfig(wire_only=True), faults=faults)
    watch = Watch(sim)
    client = Client(sim, watch, random.Random(f"{seed}/client"))
    every(sim, 0.3, FAULTS_S, WORK_STEP_S, client.work)
    hunter = Hunter(sim, watch, random.Random(f"{seed}/hunter"), down=LEADER_DOWN_S)
    for _ in range(3):
        sim.at(rng.uniform(*HUNT_S), hunter.strike)
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


@pytest.mark.conformance
@pytest.mark.seeds(20)
@pytest.mark.parametrize("size", [3, 5])
def test_raft_stays_safe_under_random_faults_and_recovers_once_they_end(seed, size):
    """Raft §5.2-§5.4 (Election Safety, Log Matching, Leader Completeness, State Machine Safety), §6.4 and liveness.

    Crashes and restarts (the leader's among them), partitions, one-way
    cuts, loss, duplication, delay and clock skew, with snapshots shipping
    meanwhile, PreVote and CheckQuorum on; invariants hold after every event.
    Once the faults end a leader emerges, commits the commands clients
    retry within LIVENESS_S, and every replica converges on one state.
    """
    check_recovered(*run_cluster(seed, size))


@pytest.mark.conformance
@pytest.mark.seeds(20)
def test_plain_raft_without_prevote_or_check_quorum_stays_safe_under_random_faults(seed):
    """Raft §5.2-§5.4 with the thesis's extensions off: more elections, the same safety, and liveness after faults."""
    check_recovered(*run_cluster(seed, 3, BASIC))


def test_same_seed_gives_the_same_trace(seed):
    """Determinism: equal seeds give equal traces, so any failure replays from its seed."""
    first, _, _ = run_cluster(seed, 3)
    second, _, _ = run_cluster(seed, 3)
    assert first.trace_hash() == second.trace_hash()

"""Membership changes in the simulator: learners join, catch up, get promoted, members leave, under faults."""

from __future__ import annotations

import random

import pytest

from keel.consensus import MembershipChange, engine_cluster
from keel.errors import KeelError
from keel.sim import SimConfig, Simulation, random_schedule

from keel_consensus_raft import create

from .cluster import Client, Hunter, Watch, every
from .test_sim import FAULTS_S, LEADER_DOWN_S, LIVENESS_S, RETRY_STEP_S, SNAPSHOT_EVERY, THESIS, WORK_STEP_S

IDS = ("n1", "n2", "n3", "n4", "n5")
INITIAL = ("n1", "n2", "n3")  # n4 and n5 start outside the cluster
CHANGE_STEP_S = 0.25  # seconds between attempts to change membership
MIN_VOTERS = 2  # never shrink below this, so a crash of one voter cannot stall the cluster for the whole run


class Reconfigurer:
    """Asks the leader for a random valid one-server change every so often."""

    def __init__(self, watch: Watch, rng: random.Random) -> None:
        self.watch, self.rng = watch, rng
        self.done: list[tuple[str, str]] = []

    def step(self, sim: Simulation) -> None:
        node = self.watch.leader()
        if node is None:
            return
        engine = sim.node(node).engine
        status = engine.status()
        outside = [n for n in IDS if n not in status.voters + status.learners]
        choices = [("add_learner", n) for n in outside] + [("promote", n) for n in status.learners]
        if len(status.voters) > MIN_VOTERS:
            choices += [("remove", n) for n in status.voters]
        choices += [("remove", n) for n in status.learners]
        action, target = self.rng.choice(choices)
        try:
            engine.change_membership(MembershipChange(action, target))
        except KeelError:
            return
        self.done.append((action, target))


@pytest.mark.conformance
@pytest.mark.seeds(12)
def test_one_server_membership_changes_stay_safe_under_faults(seed):
    """Thesis §4.1-§4.2: single-server changes through CONFIG entries keep every safety property, faults or not.

    Learners are added, promoted once caught up, and members (the leader
    among them) removed while nodes crash and the network misbehaves; once
    faults end, the members of the final configuration commit what clients
    retry and converge.
    """
    rng = random.Random(seed)
    sim = Simulation(seed, engine_cluster(create, IDS, voters=INITIAL, snapshot_every=SNAPSHOT_EVERY, options=THESIS),
                     config=SimConfig(wire_only=True), faults=random_schedule(rng, IDS, FAULTS_S))
    watch = Watch(sim)
    client = Client(sim, watch, random.Random(f"{seed}/client"))
    changes = Reconfigurer(watch, random.Random(f"{seed}/changes"))
    hunter = Hunter(sim, watch, random.Random(f"{seed}/hunter"), down=LEADER_DOWN_S)
    every(sim, 0.3, FAULTS_S, WORK_STEP_S, client.work)
    every(sim, 0.4, FAULTS_S, CHANGE_STEP_S, changes.step)
    sim.at(rng.uniform(1.0, FAULTS_S - 1.0), hunter.strike)
    final = [f"final-{i}".encode() for i in range(5)]
    sim.at(FAULTS_S, lambda s: client.must_commit(final))
    every(sim, FAULTS_S, FAULTS_S + LIVENESS_S, RETRY_STEP_S, client.retry)
    sim.run(FAULTS_S + LIVENESS_S)

    assert changes.done, "no membership change went through"
    leader = watch.leader()
    assert leader is not None and not client.pending, f"not committed after the faults ended: {sorted(client.pending)}"
    status = sim.node(leader).engine.status()
    members = status.voters + status.learners
    machines = {n: (sim.node(n).machine.index, sim.node(n).machine.digest) for n in members}
    assert len(set(machines.values())) == 1, f"members did not converge: {machines}"

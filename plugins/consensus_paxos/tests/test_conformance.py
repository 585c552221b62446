"""Paxos against keel's consensus conformance scenario, and proof that the scenario catches a broken Paxos.

`make test` runs the scenario for every installed engine
(`keel.conformance.suite`); these tests check that it fails an engine that
breaks one of Paxos's rules, so a green suite means something.
"""

from __future__ import annotations

import random
from typing import Any

import attrs

from keel.consensus import EngineSettings, Entry, Ready, Recovered
from keel.conformance.consensus_suite import run_seed
from keel.contract import ConsensusPlugin

from keel_consensus_paxos import create, proposer
from keel_consensus_paxos.state import Candidacy, PaxosState

SEEDS = range(8)  # seeds 0 and 6 catch a leader that skips recovery; a durability bug shows in several


class Forgetful:
    """Paxos that never persists anything: its promises and acceptances vanish with every crash."""

    def __init__(self, settings: EngineSettings, recovered: Recovered, rng: random.Random) -> None:
        self._engine = create(settings, recovered, rng)

    def poll(self) -> Ready:
        return attrs.evolve(self._engine.poll(), persist=())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


def _violations(plugin: ConsensusPlugin) -> list[int]:
    return [seed for seed in SEEDS if run_seed(plugin, seed).violation is not None]


def test_the_scenario_fails_a_paxos_that_skips_its_fsyncs():
    """Paxos Made Simple §2.3: an acceptor must remember its promises and acceptances across a crash."""
    forgetful = ConsensusPlugin(name="forgetful", version="0", create=Forgetful)
    assert _violations(forgetful), f"no seed in {SEEDS} noticed a Paxos that persists nothing"


def test_the_scenario_fails_a_leader_that_skips_slot_recovery(monkeypatch):
    """Paxos Made Simple §2.2: a new leader must propose the highest-ballot value a quorum reports in each slot.

    The broken leader looks only at its own acceptor's values, so a value
    another leader got chosen through other acceptors is overwritten.
    """
    become_leader = proposer._become_leader

    def without_recovery(s: PaxosState, c: Candidacy, run: list[Entry]) -> None:
        alone = attrs.evolve(c, promises={s.node_id: c.promises[s.node_id]})
        become_leader(s, c, proposer._recovered(alone))

    monkeypatch.setattr(proposer, "_become_leader", without_recovery)
    broken = ConsensusPlugin(name="unrecovered", version="0", create=create)
    caught = _violations(broken)
    assert caught, f"no seed in {SEEDS} noticed a leader that skips slot recovery"

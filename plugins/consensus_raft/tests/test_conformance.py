"""Raft against keel's consensus conformance scenario, and proof that the scenario catches a broken Raft.

`make test` runs the scenario for every installed engine
(`keel.conformance.suite`); these tests check that it fails an engine
that breaks a durability rule, so a green suite means something.
"""

from __future__ import annotations

import random
from typing import Any

import attrs

from keel.consensus import EngineSettings, Ready, Recovered
from keel.conformance.consensus_suite import run_seed
from keel.contract import ConsensusPlugin

from keel_consensus_raft import create

SEEDS = range(16)  # enough crash seeds that a durability bug shows in several


class Forgetful:
    """Raft that never persists anything: its votes and log vanish with every crash."""

    def __init__(self, settings: EngineSettings, recovered: Recovered, rng: random.Random) -> None:
        self._engine = create(settings, recovered, rng)

    def poll(self) -> Ready:
        return attrs.evolve(self._engine.poll(), persist=())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


def test_the_scenario_fails_a_raft_that_skips_its_fsyncs():
    """Raft §5.2, §5.4: term, vote and log must be durable before a node answers; without that, crashes lose commits."""
    forgetful = ConsensusPlugin(name="forgetful", version="0", create=Forgetful)
    violations = [r for r in (run_seed(forgetful, seed) for seed in SEEDS) if r.violation is not None]
    assert violations, f"no seed in {SEEDS} noticed a Raft that persists nothing"

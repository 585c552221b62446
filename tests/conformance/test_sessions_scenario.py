"""The conformance scenario catches the session bugs of issue 16, planted again, on every engine.

- The old rule: the core kept at most a bound of answers per client and,
  beyond it, dropped the oldest and counted it as acknowledged; a client
  with more requests answered behind one held back (a lost answer, a
  retry in backoff across a failover) was told its own live request had
  been "answered and acknowledged before". The pipelined client builds
  that case.
- The early stamp: a leader elected by a message that no poll had reported
  yet stamped the requests it took with its own clock (which starts
  anywhere) instead of the log's time, and every session expired at once.
  Servers' clocks start at random offsets and polls lag arrivals, so the
  scenario builds that case too.

The seeds below catch each bug as the scenario stands (found by running
the seeds 0..79; a change to the scenario may move them: look again with
`run_seed` over a wider range).
"""

from __future__ import annotations

import functools
from typing import Any

import attrs
import pytest

from keel import plugins
from keel.conformance.consensus_suite import SCENARIO, run_seed
from keel.conformance.sim_core import StateCheckedMachine
from keel.contract import Kind
from keel.core import CoreServer
from keel.core.sessions import SessionTable

ENGINES = ("raft", "paxos")


class CappedAnswers(SessionTable):
    """The rule before issue 16: no window; beyond `window` answers the oldest go, counted as acknowledged."""

    def _check_window(self, client: str, seq: int, acked: int) -> None:
        pass

    def record(self, client: str, seq: int, answer: Any) -> None:
        super().record(client, seq, answer)
        session = self._sessions[client]
        while len(session.answers) > self.window:
            oldest = min(session.answers)
            del session.answers[oldest]
            session.acked = max(session.acked, oldest)


class CappedMachine(StateCheckedMachine):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sessions = CappedAnswers(window=self.sessions.window)


# A client that keeps no window against a core that drops answers beyond its bound, as before.
OLD_RULE = attrs.evolve(SCENARIO, client_window=10**6)
CAUGHT_OLD_RULE = {"raft": (0, 1), "paxos": (0, 1)}  # every seed of 0..19 (raft) and 0..3 (paxos) caught it
CAUGHT_EARLY_STAMP = {"raft": (13, 15), "paxos": (19, 48)}  # 3 of 80 seeds (raft), 4 of 80 (paxos)


def _engine(name: str) -> Any:
    return plugins.load().get(Kind.CONSENSUS, name, field="consensus")


@pytest.mark.parametrize("engine", ENGINES)
def test_the_scenario_catches_a_core_that_drops_answers_beyond_a_cap(engine):
    plugin = _engine(engine)
    for seed in CAUGHT_OLD_RULE[engine]:
        result = run_seed(plugin, seed, OLD_RULE, machine=CappedMachine)
        assert result.violation is not None, f"{engine} seed {seed}: the old cap rule went unnoticed"


@pytest.mark.parametrize("engine", ENGINES)
def test_the_scenario_catches_a_leader_that_stamps_with_its_own_clock(engine, monkeypatch):
    monkeypatch.setattr(CoreServer, "_notice_election", lambda self: None)
    plugin = _engine(engine)
    for seed in CAUGHT_EARLY_STAMP[engine]:
        result = run_seed(plugin, seed)
        assert result.violation is not None, f"{engine} seed {seed}: the early stamp went unnoticed"


@pytest.mark.parametrize("engine", ENGINES)
def test_the_same_seeds_pass_with_the_rules_as_they_are(engine):
    plugin = _engine(engine)
    for seed in sorted({*CAUGHT_OLD_RULE[engine], *CAUGHT_EARLY_STAMP[engine]}):
        result = run_seed(plugin, seed)
        assert result.violation is None, f"{engine} seed {seed}: {result.violation}"

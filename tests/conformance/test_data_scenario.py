"""The data half of the suite catches a store whose merge breaks ties by arrival order (issue 10).

A planted last-writer-wins store compares only the wall time of two stamps
and, when they are equal, keeps whichever record arrived last: replicas that
received the same two writes in different orders keep different values, and
a quorum read can return the older one. Data nodes of the simulator stamp
writes in the same wall microsecond often enough for that to show. The
seeds below caught it when this test was written; the test asserts that
the scenario still catches it on them, and that the real store passes them.
"""

from __future__ import annotations

import attrs
import pytest

from keel import plugins
from keel.conformance.data_suite import run_seed
from keel.contract import Kind

from keel_store_lww import LwwOptions, LwwStore

CAUGHT = {"raft": (0, 3, 5), "paxos": (0, 1, 2)}  # seeds on which the planted merge is caught


class TieByArrival(LwwStore):
    """The planted bug: equal wall times go to the record that arrived last."""

    def merge(self, a, b):
        return a if a[0][0] > b[0][0] else b


def _stores():
    lww = plugins.load().get(Kind.STORE, "lww", field="store")
    planted = attrs.evolve(lww, create=lambda options=None: TieByArrival(options or LwwOptions()))
    return lww, planted


@pytest.mark.parametrize("engine", sorted(CAUGHT))
def test_a_merge_that_breaks_ties_by_arrival_is_caught_and_the_real_one_passes(engine):
    consensus = plugins.load().get(Kind.CONSENSUS, engine, field="consensus")
    lww, planted = _stores()
    for seed in CAUGHT[engine]:
        caught = run_seed(consensus, planted, seed).violation
        assert caught is not None, f"{engine} seed {seed}: the planted merge went unnoticed"
        assert caught.startswith(("(a)", "(b)", "(c)")), caught
        assert run_seed(consensus, lww, seed).violation is None

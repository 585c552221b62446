"""The data half of the suite catches a store whose merge breaks ties by arrival order (issue 10).

A planted last-writer-wins store compares only the wall time of two stamps
and, when they are equal, keeps whichever record arrived last: replicas that
received the same two writes in different orders keep different values, and
a quorum read can return the older one. Data nodes of the simulator stamp
writes in the same wall microsecond often enough for that to show: on
most of seeds 0..9 of each engine when this test was written (which seeds
moves with any change to timing on the data path, so the test asks for at
least `AT_LEAST` of them), and the real store passes the seeds that caught it.
"""

from __future__ import annotations

import attrs
import pytest

from keel import plugins
from keel.conformance.data_suite import run_seed
from keel.contract import Kind

from keel_store_lww import LwwOptions, LwwStore

SEEDS = range(10)
AT_LEAST = 2  # seeds of SEEDS on which the planted merge must be caught
ENGINES = ("raft", "paxos")


class TieByArrival(LwwStore):
    """The planted bug: equal wall times go to the record that arrived last."""

    def merge(self, a, b):
        return a if a[0][0] > b[0][0] else b


def _stores():
    lww = plugins.load().get(Kind.STORE, "lww", field="store")
    planted = attrs.evolve(lww, create=lambda options=None: TieByArrival(options or LwwOptions()))
    return lww, planted


@pytest.mark.parametrize("engine", ENGINES)
def test_a_merge_that_breaks_ties_by_arrival_is_caught_and_the_real_one_passes(engine):
    consensus = plugins.load().get(Kind.CONSENSUS, engine, field="consensus")
    lww, planted = _stores()
    caught = {}
    for seed in SEEDS:
        violation = run_seed(consensus, planted, seed).violation
        if violation is not None:
            caught[seed] = violation
        if len(caught) == AT_LEAST:
            break
    assert len(caught) == AT_LEAST, f"{engine}: the planted merge was caught on seeds {sorted(caught)} only"
    for seed, violation in caught.items():
        assert violation.startswith(("(a)", "(b)", "(c)")), violation
        assert run_seed(consensus, lww, seed).violation is None

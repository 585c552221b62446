"""Every installed consensus engine against the consensus conformance scenario (`keel.conformance.consensus_suite`).

`make test` runs 50 seeds per engine; `make conformance` runs 1,000 through
`keel conformance`, which prints the per-engine summary.
"""

from __future__ import annotations

import pytest

from keel.conformance.consensus_suite import check_consensus


@pytest.mark.conformance
@pytest.mark.seeds(50)
def test_consensus_engine_keeps_every_rule_under_faults(consensus_plugin, seed):
    """Safety, linearizability, durability, liveness and convergence under crashes, partitions, loss and membership changes."""
    check_consensus(consensus_plugin, seed)

"""Every installed store on every installed consensus engine, against the data half of the suite.

`keel.conformance.data_suite`: convergence, quorum reads and no lost writes,
under crashes with restarts, partitions, loss, duplication, clock skew and a
late-joining data node. `make test` runs 10 seeds per combination;
`make conformance` runs 1,000 through `keel conformance`.
"""

from __future__ import annotations

import pytest

from keel.conformance.data_suite import check_data


@pytest.mark.conformance
@pytest.mark.seeds(10)
def test_store_on_the_data_cluster_converges_and_loses_no_acknowledged_write(consensus_plugin, store_plugin, seed):
    """(a) replicas converge after healing, (b) quorum reads never go back, (c, d) acknowledged writes stay."""
    check_data(consensus_plugin, store_plugin, seed)

"""Every installed store against the laws its merge must keep (`keel.conformance.store_laws`).

`make test` runs 50 seeds per store; `make conformance` runs more.
"""

from __future__ import annotations

import pytest

from keel.conformance.store_laws import check_store


@pytest.mark.conformance
@pytest.mark.seeds(50)
def test_store_merge_is_a_join_on_the_records_it_makes(store_plugin, seed):
    """Commutative, associative, idempotent, an inflation; the same updates in any order converge."""
    store = store_plugin.create(store_plugin.options() if store_plugin.options else None)
    assert check_store(store, seed=seed) == []

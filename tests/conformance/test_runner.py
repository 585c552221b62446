"""Seed results and their summaries, as `keel conformance` reports them."""

from __future__ import annotations

import attrs
import pytest

from keel.conformance.runner import SeedResult, run_many, summarize

COMBO = (("consensus", "fake"),)


def test_a_summary_counts_operations_and_names_violations_and_the_slowest_seed():
    results = [SeedResult(seed=s, operations=10, elapsed=float(s % 3), violation="lost" if s == 4 else None)
               for s in range(6)]
    summary = summarize(COMBO, results, replay="replay {seed}")
    row = summary.to_json()
    assert row["consensus"] == "fake" and row["seeds"] == 6 and row["operations"] == 60
    assert row["violations"] == 1 and row["failed_seeds"] == [{"seed": 4, "violation": "lost", "replay": "replay 4"}]
    assert row["slowest_seed"] in (2, 5)


def test_run_many_runs_each_seed_once_in_order():
    seen = []
    summary = run_many(COMBO, lambda seed: SeedResult(seed=seed, operations=seed), range(3), replay="{seed}",
                       on_seed=lambda r: seen.append(r.seed))
    assert seen == [0, 1, 2] and summary.operations == 3


def test_a_result_survives_its_json_round_trip():
    result = SeedResult(seed=3, operations=7, violation="x", snapshots_installed=2, membership_changes=5, elapsed=0.5)
    assert SeedResult.from_json(attrs.asdict(result)) == result


@pytest.mark.parametrize("row", [{"operations": 1}, {"seed": "3", "operations": 1}, {"seed": 1, "operations": 1, "violation": 5}])
def test_a_malformed_result_line_is_refused(row):
    with pytest.raises(ValueError, match="seed result"):
        SeedResult.from_json(row)

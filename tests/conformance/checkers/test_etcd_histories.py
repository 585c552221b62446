"""The checker on three histories recorded from a real etcd cluster (test vectors with known verdicts).

They live in the `shared` folder beside the checkout (see its
`data/histories/README.md`), not in the repository; the tests skip when it
is absent. Times are printed, not asserted: run with `-s` to see them.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from keel.conformance.checkers import Verdict, check_linearizable, load_jsonl

HISTORIES = (Path(__file__).parents[3] / ".." / "shared" / "data" / "histories").resolve()


def checked(name: str) -> Verdict:
    path = HISTORIES / name
    if not path.is_file():
        pytest.skip(f"the reference etcd histories are not beside the checkout: no {path.name} in {HISTORIES}")
    started = time.perf_counter()
    history = load_jsonl(path)
    loaded = time.perf_counter()
    verdict = check_linearizable(history)
    done = time.perf_counter()
    print(f"\n{name}: {len(history):,} operations, loaded in {loaded - started:.2f} s, "
          f"checked in {done - loaded:.2f} s ({verdict.steps:,} search steps): {verdict.linearizable}")
    return verdict


def test_the_linearizable_etcd_history_is_accepted():
    verdict = checked("etcd-linearizable.jsonl.gz")
    assert verdict.linearizable is True, verdict.explain()
    assert len(verdict.keys) == 10


def test_the_etcd_history_with_one_stale_read_is_rejected_at_that_read():
    verdict = checked("etcd-one-stale-read.jsonl.gz")
    assert verdict.linearizable is False
    assert [v.key for v in verdict.violations] == ["key7"]
    stuck = verdict.violation.stuck
    assert (stuck.f, stuck.key, stuck.process, stuck.result) == ("read", "key7", 6, 20001341)
    assert "key 'key7'" in verdict.explain() and "read key7 -> 20001341" in verdict.explain()


def test_the_etcd_history_with_serializable_reads_is_rejected():
    verdict = checked("etcd-serializable-reads.jsonl.gz")
    assert verdict.linearizable is False
    assert verdict.violation is not None and verdict.violation.stuck.f == "read"

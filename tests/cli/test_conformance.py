"""`keel conformance`: the seeded suite from the command line, as an operator runs it."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import assert_one_line_error

SUITE_TIMEOUT_S = 300.0  # seconds for a few seeds on a loaded two-core machine; one takes about a second


def test_json_reports_each_engine_and_each_store_on_it_with_its_counts(keel) -> None:
    result = keel("conformance", "--seeds", "3", "--jobs", "2", "--json", timeout=SUITE_TIMEOUT_S)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {(row["consensus"], row.get("store")): row for row in json.loads(result.stdout)}
    assert set(rows) == {("paxos", None), ("raft", None), ("paxos", "lww"), ("raft", "lww")}
    for half in (("raft", None), ("raft", "lww")):
        row = rows[half]
        assert row["seeds"] == 3
        assert row["violations"] == 0 and row["failed_seeds"] == []
        assert row["operations"] > 100  # four clients for ten (core) or sixteen (data) virtual seconds each seed
        assert row["slowest_seed"] in (0, 1, 2)


def test_one_half_alone(keel) -> None:
    result = keel("conformance", "--seeds", "1", "--half", "data", "--consensus", "raft", "--json",
                  timeout=SUITE_TIMEOUT_S)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [(row["consensus"], row["store"]) for row in json.loads(result.stdout)] == [("raft", "lww")]


def test_a_seed_that_overruns_is_a_violation_with_its_replay_command(keel) -> None:
    result = keel("conformance", "--seed", "7", "--seed-timeout", "0.001", timeout=SUITE_TIMEOUT_S)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "raft seed 7: hung" in result.stdout
    assert "replay: keel conformance --consensus raft --half core --seed 7" in result.stdout
    assert "raft/lww seed 7: hung" in result.stdout
    assert "replay: keel conformance --consensus raft --store lww --half data --seed 7" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(("args", "words"), [
    (("--consensus", "nope"), '"nope" is not an installed consensus plugin (installed: paxos, raft'),
    (("--seeds", "0"), "--seeds: 0 is below 1"),
    (("--jobs", "0"), "--jobs: 0 is below 1"),
    (("--seed-timeout", "-1"), "--seed-timeout: -1 is not positive"),
    (("--store", "nope"), '"nope" is not an installed store plugin (installed: lww'),
])
def test_bad_arguments_are_one_line_errors(keel, args, words) -> None:
    assert_one_line_error(keel("conformance", *args), status=2, words=words)

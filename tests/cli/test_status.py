"""`keel status` shows the core nodes' consensus state."""

from __future__ import annotations

import json

from tests.cli.conftest import run_keel
from tests.client.cluster import RunningCluster


def test_status_shows_role_leader_term_and_indexes_of_core_nodes(core_cluster: RunningCluster) -> None:
    leader = core_cluster.wait_for_leader()
    result = run_keel("status", "--cluster", str(core_cluster.cluster_file), "--json")
    assert result.returncode == 0, result.stderr
    cores = [row["core"] for row in json.loads(result.stdout)]
    assert sorted(c["role"] for c in cores) == ["follower", "follower", "leader"]
    assert {c["leader"] for c in cores} == {leader["id"]}
    for core in cores:
        assert core["term"] >= 1
        assert core["applied_index"] <= core["commit_index"] <= core["last_index"]
        assert core["voters"] == ["c1", "c2", "c3"]
        assert core["log_bytes"] >= 0
    table = run_keel("status", "--cluster", str(core_cluster.cluster_file))
    assert table.returncode == 0
    for header in ("role", "leader", "term", "commit", "applied", "log"):
        assert header in table.stdout

"""`keel status` shows the core nodes' consensus state."""

from __future__ import annotations

import time

from tests.cli.conftest import run_keel
from tests.client.cluster import RunningCluster

SETTLE_TIMEOUT_S = 60.0  # seconds for the three nodes to agree on one leader, on a loaded machine


def test_status_shows_role_leader_term_and_indexes_of_core_nodes(core_cluster: RunningCluster) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:  # an election may be on between two looks; wait for a settled picture
        cores = [row["core"] for row in core_cluster.status() if row.get("core")]
        leaders = [c for c in cores if c["role"] == "leader"]
        if len(cores) == 3 and len(leaders) == 1 and {c["leader"] for c in cores} == {leaders[0]["leader"]}:
            break
        assert time.monotonic() < deadline, cores
        time.sleep(0.3)
    assert sorted(c["role"] for c in cores) == ["follower", "follower", "leader"]
    for core in cores:
        assert core["term"] >= 1
        assert core["applied_index"] <= core["commit_index"] <= core["last_index"]
        assert core["voters"] == ["c1", "c2", "c3"]
        assert core["log_bytes"] > 0
    table = run_keel("status", "--cluster", str(core_cluster.cluster_file))
    assert table.returncode == 0, table.stderr
    for header in ("role", "leader", "term", "commit", "applied", "log"):
        assert header in table.stdout

"""`keel lease` against a real core."""

from __future__ import annotations

from tests.cli.conftest import assert_one_line_error, run_keel
from tests.client.cluster import RunningCluster


def keel_at(cluster: RunningCluster, *args: str):
    return run_keel(*args, "--cluster", str(cluster.cluster_file))


def test_a_granted_lease_holds_keys_until_revoked(core_cluster: RunningCluster) -> None:
    granted = keel_at(core_cluster, "lease", "grant", "60")
    assert granted.returncode == 0, granted.stderr
    lease = granted.stdout.strip()
    assert keel_at(core_cluster, "kv", "put", "leased/k", "v", "--lease", lease).returncode == 0
    assert keel_at(core_cluster, "lease", "keepalive", lease, "--once").returncode == 0
    assert keel_at(core_cluster, "lease", "revoke", lease).stdout == f"lease {lease} revoked\n"
    assert_one_line_error(keel_at(core_cluster, "kv", "get", "leased/k"), status=1, words="not found")
    assert_one_line_error(keel_at(core_cluster, "lease", "revoke", lease), status=1, words="does not exist")


def test_a_bad_ttl_is_a_usage_error(core_cluster: RunningCluster) -> None:
    assert_one_line_error(keel_at(core_cluster, "lease", "grant", "0"), status=2, words="TTL: 0 is not above 0")
    assert_one_line_error(keel_at(core_cluster, "lease", "grant", "soon"), status=2, words="invalid float value")

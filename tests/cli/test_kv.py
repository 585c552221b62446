"""`keel kv` against a real core, as a user runs it."""

from __future__ import annotations

import json

from tests.cli.conftest import assert_one_line_error, run_keel
from tests.client.cluster import RunningCluster


def kv(cluster: RunningCluster, *args: str):
    return run_keel("kv", *args, "--cluster", str(cluster.cluster_file))


def test_kv_put_then_get_prints_the_value(core_cluster: RunningCluster) -> None:
    put = kv(core_cluster, "put", "a", "1")
    assert (put.returncode, put.stdout) == (0, "OK\n"), put.stderr
    got = kv(core_cluster, "get", "a")
    assert (got.returncode, got.stdout, got.stderr) == (0, "1\n", "")


def test_kv_get_of_an_unknown_key_fails_in_one_line(core_cluster: RunningCluster) -> None:
    result = kv(core_cluster, "get", "no-such-key")
    assert_one_line_error(result, status=1, words="no-such-key: not found")
    assert result.stdout == ""


def test_kv_get_json_and_range_and_del(core_cluster: RunningCluster) -> None:
    for key, value in (("r/a", "1"), ("r/b", "2"), ("r/c", "3")):
        assert kv(core_cluster, "put", key, value).returncode == 0
    shown = json.loads(kv(core_cluster, "get", "r/b", "--json").stdout)
    assert (shown["key"], shown["value"], shown["version"]) == ("r/b", "2", 1)
    assert kv(core_cluster, "range", "r/").stdout == "r/a\t1\nr/b\t2\nr/c\t3\n"
    limited = json.loads(kv(core_cluster, "range", "r/", "--limit", "2", "--json").stdout)
    assert (limited["count"], limited["more"], [k["key"] for k in limited["kvs"]]) == (3, True, ["r/a", "r/b"])
    assert kv(core_cluster, "del", "r/a").stdout == "1\n"
    assert kv(core_cluster, "del", "r/", "--prefix").stdout == "2\n"
    assert kv(core_cluster, "range", "r/").stdout == ""


def test_kv_cas_exits_1_when_the_compare_fails(core_cluster: RunningCluster) -> None:
    assert kv(core_cluster, "cas", "--absent", "c/k", "one").returncode == 0
    assert_one_line_error(kv(core_cluster, "cas", "--absent", "c/k", "two"), status=1, words="compare failed")
    assert_one_line_error(kv(core_cluster, "cas", "c/k", "zero", "two"), status=1, words="compare failed")
    assert kv(core_cluster, "cas", "c/k", "one", "two").returncode == 0
    assert kv(core_cluster, "get", "c/k").stdout == "two\n"
    assert_one_line_error(kv(core_cluster, "cas", "c/k", "two"), status=2, words="KEY EXPECTED NEW")


def test_kv_watch_prints_the_events_since_a_revision(core_cluster: RunningCluster) -> None:
    first = json.loads(kv(core_cluster, "put", "w/k", "1", "--json").stdout)["revision"]
    kv(core_cluster, "put", "w/k", "2")
    kv(core_cluster, "del", "w/k")
    plain = kv(core_cluster, "watch", "w/", "--prefix", "--rev", str(first), "--count", "3")
    assert (plain.returncode, plain.stdout) == (0, "PUT w/k 1\nPUT w/k 2\nDELETE w/k\n"), plain.stderr
    lines = kv(core_cluster, "watch", "w/k", "--rev", str(first), "--count", "1", "--json").stdout.splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["put"]


def test_a_bad_or_unreachable_endpoint_is_a_one_line_error() -> None:
    assert_one_line_error(run_keel("kv", "get", "a", "--endpoints", "nonsense"), status=2,
                          words='--endpoints: "nonsense" is not host:port')
    assert_one_line_error(run_keel("kv", "get", "a", "--endpoints", "127.0.0.1:1", "--timeout", "1"), status=1,
                          words="no answer from the core within 1 s")
    assert_one_line_error(run_keel("kv", "get", "a", "--cluster", "/nonexistent/cluster.json"), status=2,
                          words="cannot read")
    assert_one_line_error(run_keel("kv", "get", "a", "--timeout", "0"), status=2, words="--timeout: 0 is not above 0")


def test_every_client_command_has_help() -> None:
    for command in (["kv"], ["kv", "put"], ["kv", "get"], ["kv", "range"], ["kv", "del"], ["kv", "cas"],
                    ["kv", "watch"], ["lease"], ["lease", "grant"], ["lease", "revoke"], ["lease", "keepalive"],
                    ["lock"]):
        result = run_keel(*command, "--help")
        assert result.returncode == 0, (command, result.stderr)
        assert "usage: keel" in result.stdout

"""`keel data` and `keel bucket` against a real 3 core + 3 data cluster, as the README has a user run them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import assert_one_line_error, run_keel
from tests.client.cluster import RunningCluster

READY_S = 60.0  # seconds for the first map and the default bucket on a loaded machine


@pytest.fixture(scope="module")
def data_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    cluster = RunningCluster(Path(tmp_path_factory.mktemp("data")) / "cluster", data=3)
    try:
        cluster.wait_for_leader()
        deadline = time.monotonic() + READY_S
        while run_keel("data", "put", "ready", "yes", "--cluster", str(cluster.cluster_file)).returncode != 0:
            if time.monotonic() > deadline:
                pytest.fail("the data cluster did not take a put in time")
            time.sleep(0.5)
        yield cluster
    finally:
        cluster.stop()


def cli(cluster: RunningCluster, *args: str):
    return run_keel(*args, "--cluster", str(cluster.cluster_file))


def test_data_put_then_get_prints_the_value_and_del_removes_it(data_cluster: RunningCluster) -> None:
    assert cli(data_cluster, "data", "put", "k", "v").stdout == "OK\n"
    got = cli(data_cluster, "data", "get", "k")
    assert (got.returncode, got.stdout, got.stderr) == (0, "v\n", "")
    assert json.loads(cli(data_cluster, "data", "get", "k", "--json", "-r", "3").stdout) == {"value": "v"}
    assert cli(data_cluster, "data", "del", "k").returncode == 0
    assert_one_line_error(cli(data_cluster, "data", "get", "k"), status=1, words="k: not found in bucket default")


def test_buckets_are_created_listed_and_refused_with_other_settings(data_cluster: RunningCluster) -> None:
    made = cli(data_cluster, "bucket", "create", "visits", "--option", "tombstone_grace=60", "-r", "1", "-w", "3")
    assert made.stdout == "bucket visits: store lww, n=3 r=1 w=3\n", made.stderr
    assert "visits\tstore lww, n=3 r=1 w=3" in cli(data_cluster, "bucket", "list").stdout
    assert_one_line_error(cli(data_cluster, "bucket", "create", "visits"), status=1,
                          words="bucket visits exists with other settings")
    assert cli(data_cluster, "data", "put", "a", "1", "--bucket", "visits").returncode == 0
    assert cli(data_cluster, "data", "get", "a", "--bucket", "visits").stdout == "1\n"


@pytest.mark.parametrize(("args", "status", "words"), [
    (("data", "get", "k", "--bucket", "nosuch"), 1, "bucket 'nosuch' does not exist"),
    (("bucket", "create", "x", "--store", "nope"), 2, '--store: "nope" is not an installed store plugin'),
    (("bucket", "create", "x", "--option", "tombstone_grace=-1"), 2, "tombstone_grace"),
    (("data", "put", "k", "v", "-w", "9"), 2, "-w"),
    (("kv", "put", "keel/data/map", "junk"), 1, "keys under keel/ are keel's own"),
])
def test_mistakes_get_one_line_errors(data_cluster: RunningCluster, args: tuple[str, ...], status: int,
                                      words: str) -> None:
    assert_one_line_error(cli(data_cluster, *args), status=status, words=words)

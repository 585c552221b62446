"""`keel up` and `keel status` with real node processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import run_keel

START_TIMEOUT_S = 60.0  # seconds for `keel up` to report every node running; generous for a loaded CI machine
STOP_TIMEOUT_S = 30.0


class Up:
    """A `keel up` process and everything it started, killed by PID at the end."""

    def __init__(self, directory: Path, *args: str) -> None:
        self.dir = directory
        self.output = directory.parent / f"up-{time.monotonic_ns()}.out"
        with self.output.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "keel", "up", "--dir", str(directory), "--no-view", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def cluster_file(self) -> Path:
        return self.dir / "cluster.json"

    def text(self) -> str:
        return self.output.read_text()

    def wait_for(self, words: str, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while words not in self.text():
            if self.proc.poll() is not None:
                pytest.fail(f"keel up exited with {self.proc.returncode} before {words!r}:\n{self.text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"keel up did not say {words!r} within {timeout} s:\n{self.text()}")
            time.sleep(0.1)

    def nodes(self) -> list[dict]:
        return json.loads(self.cluster_file.read_text())["nodes"]

    def status(self) -> tuple[int, list[dict]]:
        result = run_keel("status", "--cluster", str(self.cluster_file), "--json")
        return result.returncode, json.loads(result.stdout)

    def cleanup(self) -> None:
        pids = [self.proc.pid]
        if self.cluster_file.exists():
            pids += [n["pid"] for n in self.nodes() if n["pid"]]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=STOP_TIMEOUT_S)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    started: list[Up] = []

    def start(*args: str) -> Up:
        cluster = Up(tmp_path / "cluster", *args)
        started.append(cluster)
        return cluster

    yield start  # type: ignore[misc]
    for cluster in started:
        cluster.cleanup()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too; /proc tells them apart on Linux.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def wait_until(predicate, timeout: float = START_TIMEOUT_S, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_up_starts_every_node_and_status_lists_them(up) -> None:
    cluster = up("--core", "3", "--data", "2")
    cluster.wait_for("nodes running")
    nodes = cluster.nodes()
    assert [n["id"] for n in nodes] == ["c1", "c2", "c3", "d1", "d2"]
    assert [n["roles"] for n in nodes] == [["core"]] * 3 + [["data"]] * 2
    for node in nodes:
        assert _alive(node["pid"])
        assert node["peer_address"].startswith("127.0.0.1:")
        assert Path(node["config"]).is_file()
    wait_until(lambda: all(p["alive"] for n in cluster.status()[1] for p in n["peers"]), what="heartbeats between all nodes")
    code, rows = cluster.status()
    assert code == 0
    assert [r["state"] for r in rows] == ["up"] * 5
    # Data nodes know the core from their configs; the core learns of them from their heartbeats.
    assert sorted(p["id"] for p in rows[0]["peers"]) == ["c2", "c3", "d1", "d2"]
    assert sorted(p["id"] for p in rows[3]["peers"]) == ["c1", "c2", "c3"]
    assert {r["pid"] for r in rows} == {n["pid"] for n in nodes}


def test_a_node_that_dies_is_reported_not_restarted_and_sigterm_stops_the_rest(up) -> None:
    cluster = up("--core", "3", "--data", "0")
    cluster.wait_for("nodes running")
    nodes = cluster.nodes()
    victim = nodes[1]
    os.kill(victim["pid"], signal.SIGKILL)
    cluster.wait_for("node c2 was killed by SIGKILL; not restarting it")
    wait_until(lambda: cluster.nodes()[1]["exit_status"] == -signal.SIGKILL, what="cluster.json to record the death")
    code, rows = cluster.status()
    assert code == 1  # a node does not answer
    assert [r["state"] for r in rows] == ["up", f"exited ({-signal.SIGKILL})", "up"]
    assert not _alive(victim["pid"])  # and nobody started it again
    assert cluster.nodes()[1]["pid"] == victim["pid"]

    cluster.proc.send_signal(signal.SIGTERM)
    assert cluster.proc.wait(timeout=STOP_TIMEOUT_S) == 0
    assert "keel up: stopped" in cluster.text()
    for node in nodes:
        assert not _alive(node["pid"])


def test_up_twice_on_one_dir_is_refused_while_the_first_runs(up, tmp_path: Path) -> None:
    cluster = up("--core", "1", "--data", "0")
    cluster.wait_for("nodes running")
    result = run_keel("up", "--dir", str(cluster.dir), "--core", "1", "--data", "0", "--no-view")
    assert result.returncode == 2
    assert "a cluster is already running there" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_restarted_cluster_keeps_its_ports_and_configs(up) -> None:
    first = up("--core", "1", "--data", "1")
    first.wait_for("nodes running")
    before = [(n["id"], n["peer_address"], n["client_address"]) for n in first.nodes()]
    first.proc.send_signal(signal.SIGINT)
    assert first.proc.wait(timeout=STOP_TIMEOUT_S) == 0
    second = up("--core", "1", "--data", "1")
    second.wait_for("nodes running")
    assert [(n["id"], n["peer_address"], n["client_address"]) for n in second.nodes()] == before


def test_a_broken_kept_config_fails_up_naming_the_field(up) -> None:
    cluster = up("--core", "1", "--data", "0")
    cluster.wait_for("nodes running")
    cluster.proc.send_signal(signal.SIGTERM)
    assert cluster.proc.wait(timeout=STOP_TIMEOUT_S) == 0
    config = cluster.dir / "nodes" / "c1" / "node.toml"
    config.write_text(config.read_text().replace('roles = ["core"]', 'roles = ["core", "witness"]'))
    result = run_keel("up", "--dir", str(cluster.dir), "--core", "1", "--data", "0", "--no-view")
    assert result.returncode == 2
    assert 'node.roles: "witness" is not a role' in result.stderr


def test_a_node_that_dies_while_starting_fails_up_and_shows_its_log(up) -> None:
    first = up("--core", "1", "--data", "0")
    first.wait_for("nodes running")
    port = int(first.nodes()[0]["peer_address"].rsplit(":", 1)[1])
    first.proc.send_signal(signal.SIGTERM)
    assert first.proc.wait(timeout=STOP_TIMEOUT_S) == 0
    with socket.socket() as squatter:  # another program took the node's port meanwhile
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = run_keel("up", "--dir", str(first.dir), "--core", "1", "--data", "0", "--no-view")
    assert result.returncode == 1
    assert "node c1 exited with status 1" in result.stderr
    assert str(port) in result.stderr  # the tail of its log says which address was taken
    assert "Traceback" not in result.stderr

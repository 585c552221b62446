"""A real local cluster for end-to-end tests: `keel up --data 0` as a subprocess, killed by PID at the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from keel.client import Endpoint, endpoints_from_cluster

__all__ = ["RunningCluster"]

START_TIMEOUT_S = 90.0  # seconds for three nodes to start and elect a leader on a loaded machine
POLL_S = 0.3  # seconds between readiness checks
EXIT_WAIT_S = 15.0  # seconds for killed processes to be gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


class RunningCluster:
    """Three core nodes (and `data` data nodes) on 127.0.0.1, started by `keel up` in its own session."""

    def __init__(self, directory: Path, *, consensus: str = "raft", data: int = 0) -> None:
        self.dir = directory
        self.output = directory.parent / f"{directory.name}-up.out"
        with self.output.open("a") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "keel", "up", "--dir", str(directory), "--no-view", "--data", str(data),
                 "--consensus", consensus],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self._pids: set[int] = set()

    @property
    def cluster_file(self) -> Path:
        return self.dir / "cluster.json"

    def nodes(self) -> list[dict[str, Any]]:
        return json.loads(self.cluster_file.read_text())["nodes"]

    def endpoints(self) -> tuple[Endpoint, ...]:
        return endpoints_from_cluster(self.cluster_file)

    def addresses(self) -> list[str]:
        """The client addresses alone, without node ids."""
        return [str(e.address) for e in self.endpoints()]

    def status(self) -> list[dict[str, Any]]:
        result = subprocess.run([sys.executable, "-m", "keel", "status", "--cluster", str(self.cluster_file), "--json"],
                                capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        return json.loads(result.stdout) if result.stdout.strip() else []

    def wait_for_leader(self, timeout: float = START_TIMEOUT_S) -> dict[str, Any]:
        """Wait until `keel status` shows a core leader that every answering node agrees on; its row."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"keel up exited with {self.proc.returncode}:\n{self.output.read_text()}")
            if self.cluster_file.exists():
                self._pids |= {n["pid"] for n in self.nodes() if n["pid"]}
                rows = [r for r in self.status() if r.get("core")]
                leaders = {r["core"]["leader"] for r in rows}
                leading = [r for r in rows if r["core"]["role"] == "leader"]
                if len(leading) == 1 and leaders == {leading[0]["id"]}:
                    return leading[0]
            time.sleep(POLL_S)
        pytest.fail(f"no core leader within {timeout} s:\n{self.output.read_text()}")

    def adopt(self, pid: int) -> None:
        """A process the test started for this cluster (a restarted node): `stop` kills it too."""
        self._pids.add(pid)

    def kill(self, node_id: str) -> None:
        """SIGKILL one node."""
        pid = next(n["pid"] for n in self.nodes() if n["id"] == node_id)
        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        """Kill `keel up` and every node by process group, and wait until none is left."""
        if self.cluster_file.exists():
            self._pids |= {n["pid"] for n in self.nodes() if n["pid"]}
        for group in [self.proc.pid, *sorted(self._pids)]:  # each node runs in a session of its own
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=EXIT_WAIT_S)
        deadline = time.monotonic() + EXIT_WAIT_S
        while any(_alive(pid) for pid in self._pids):
            if time.monotonic() > deadline:
                pytest.fail(f"node processes survived: {[p for p in self._pids if _alive(p)]}")
            time.sleep(0.1)

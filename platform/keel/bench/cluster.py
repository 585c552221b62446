"""The local core a benchmark measures: `keel up` in a temporary directory, plus the nodes it restarts itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from keel.errors import KeelError

__all__ = ["START_TIMEOUT_S", "STOP_GRACE_S", "BenchCluster"]

START_TIMEOUT_S = 60.0  # seconds for the cluster to elect a leader on a loaded machine
STOP_GRACE_S = 10.0  # seconds the cluster gets to stop after SIGTERM


class BenchCluster:
    """`keel up` in a temporary directory, plus the nodes this bench restarts itself."""

    def __init__(self, root: Path, consensus: str, *, data: int = 0) -> None:
        self.root = root
        self.consensus = consensus
        self.data = data
        self.up: subprocess.Popen[bytes] | None = None
        self.restarted: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def file(self) -> Path:
        return self.root / "cluster.json"

    def start(self) -> None:
        self.up = subprocess.Popen(
            [sys.executable, "-m", "keel", "up", "--dir", str(self.root), "--data", str(self.data), "--no-view",
             "--consensus", self.consensus],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.file.exists():
            if self.up.poll() is not None or time.monotonic() > deadline:
                raise KeelError(f"keel up did not start a cluster in {self.root} (exit status {self.up.poll()})")
            time.sleep(0.1)

    def pids(self) -> dict[str, int]:
        """Node id -> pid of every node as it runs now."""
        nodes = json.loads(self.file.read_text())["nodes"]
        pids = {n["id"]: n["pid"] for n in nodes}
        pids.update({node_id: proc.pid for node_id, proc in self.restarted.items()})
        return pids

    def config(self, node_id: str) -> str:
        return next(n["config"] for n in json.loads(self.file.read_text())["nodes"] if n["id"] == node_id)

    def kill(self, node_id: str) -> None:
        os.kill(self.pids()[node_id], signal.SIGKILL)

    def restart(self, node_id: str) -> None:
        log = open(self.root / f"{node_id}-restarted.log", "ab")  # noqa: SIM115 - the child keeps it
        self.restarted[node_id] = subprocess.Popen(
            [sys.executable, "-m", "keel", "node", "--config", self.config(node_id)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()

    def stop(self) -> None:
        for proc in self.restarted.values():
            _end(proc)
        if self.up is not None:
            _end(self.up)
        for pid in (self.pids().values() if self.file.exists() else ()):
            try:
                os.kill(pid, signal.SIGKILL)  # a node that outlived keel up (it was killed before it could stop it)
            except ProcessLookupError:
                pass


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_GRACE_S)

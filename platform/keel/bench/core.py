"""`keel bench core`: a local 3-node core, durable (fsync on), driven through the client library.

What it measures, in this order, on one machine (nodes and client share its cores):

- `p50_ms`, `p99_ms`: latency of one client writing in sequence;
- `writes_per_s`: writes acknowledged per second with `clients` writers at
  once, each one write in flight (so `clients` requests in flight);
- `reads_per_s`: linearizable reads per second, as many in flight;
- `failover_ms`: from SIGKILL of the leader to the next acknowledged write
  of a client writing in a loop; the median of `failovers` kills (each
  killed node is restarted and caught up before the next), with every
  sample in `failover_samples_ms`.

Every value written is `value_bytes` long. The cluster lives in a temporary
directory and every process it started is killed, by PID, at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from keel.bench.stats import percentile
from keel.client import AsyncClient, connect, endpoints_from_cluster
from keel.errors import KeelError

__all__ = ["CoreBench", "bench_core"]

START_TIMEOUT_S = 60.0  # seconds for the cluster to elect a leader on a loaded machine
CATCH_UP_TIMEOUT_S = 60.0  # seconds for a restarted node to catch up
STOP_GRACE_S = 10.0  # seconds the cluster gets to stop after SIGTERM


@attrs.frozen(kw_only=True)
class CoreBench:
    """What to run."""

    consensus: str = "raft"
    clients: int = 64
    writes: int = 20_000
    sequential: int = 1_000
    reads: int = 20_000
    failovers: int = 3
    value_bytes: int = 256


def bench_core(spec: CoreBench) -> dict[str, Any]:
    """Start the cluster, measure, stop it; the figures as a JSON-ready dict."""
    with tempfile.TemporaryDirectory(prefix="keel-bench-") as tmp:
        cluster = _Cluster(Path(tmp), spec.consensus)
        try:
            cluster.start()
            return trio.run(_measure, spec, cluster)
        finally:
            cluster.stop()


class _Cluster:
    """`keel up` in a temporary directory, plus the nodes this bench restarts itself."""

    def __init__(self, root: Path, consensus: str) -> None:
        self.root = root
        self.consensus = consensus
        self.up: subprocess.Popen[bytes] | None = None
        self.restarted: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def file(self) -> Path:
        return self.root / "cluster.json"

    def start(self) -> None:
        self.up = subprocess.Popen(
            [sys.executable, "-m", "keel", "up", "--dir", str(self.root), "--data", "0", "--no-view",
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


async def _measure(spec: CoreBench, cluster: _Cluster) -> dict[str, Any]:
    endpoints = endpoints_from_cluster(cluster.file)
    value = b"v" * spec.value_bytes
    async with connect(endpoints) as client:
        await _leader(client, START_TIMEOUT_S)
        samples = []
        for i in range(spec.sequential):
            started = time.perf_counter()
            await client.put(f"seq/{i % 100}", value)
            samples.append(time.perf_counter() - started)
        writes_s = await _rate(spec.clients, spec.writes, lambda i: client.put(f"load/{i % 1000}", value))
        reads_s = await _rate(spec.clients, spec.reads, lambda i: client.get(f"load/{i % 1000}"))
        failovers = [await _failover(client, cluster, value) for _ in range(spec.failovers)]
    return {
        "consensus": spec.consensus,
        "value_bytes": spec.value_bytes,
        "clients": spec.clients,
        "writes_per_s": round(writes_s),
        "p50_ms": round(percentile(samples, 50) * 1e3, 3),
        "p99_ms": round(percentile(samples, 99) * 1e3, 3),
        "reads_per_s": round(reads_s),
        "failover_ms": round(sorted(failovers)[len(failovers) // 2] * 1e3) if failovers else None,
        "failover_samples_ms": [round(f * 1e3) for f in failovers],
    }


async def _rate(workers: int, total: int, op: Callable[[int], Awaitable[Any]]) -> float:
    """Operations per second with `workers` running `op` at once, `total` in all."""
    counter = iter(range(total))

    async def work() -> None:
        for i in counter:
            await op(i)

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(workers):
            nursery.start_soon(work)
    return total / (time.perf_counter() - started)


async def _leader(client: AsyncClient, timeout: float) -> str:
    with trio.fail_after(timeout):
        while True:
            statuses = await client.node_status()
            leaders = [s.node_id for s in statuses if s is not None and s.role == "leader"]
            if leaders:
                return leaders[0]
            await trio.sleep(0.05)


async def _failover(client: AsyncClient, cluster: _Cluster, value: bytes) -> float:
    """Kill the leader, time the next acknowledged write, restart the node and let it catch up."""
    leader = await _leader(client, START_TIMEOUT_S)
    await client.put("failover", value)
    cluster.kill(leader)
    killed = time.perf_counter()
    while True:
        try:  # the client's own retries find the new leader; a call that runs out of its deadline is asked again
            await client.put("failover", value)
            break
        except KeelError:
            continue
    took = time.perf_counter() - killed
    cluster.restart(leader)
    with trio.fail_after(CATCH_UP_TIMEOUT_S):
        while True:
            statuses = {s.node_id: s for s in await client.node_status() if s is not None}
            back = statuses.get(leader)
            lead = next((s for s in statuses.values() if s.role == "leader"), None)
            if back is not None and lead is not None and back.applied_index >= lead.commit_index:
                break
            await trio.sleep(0.1)
    return took

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

Every value written is `value_bytes` long. The cluster (`BenchCluster`)
lives in a temporary directory and every process it started is killed, by
PID, at the end.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from keel.bench.cluster import START_TIMEOUT_S, BenchCluster
from keel.bench.stats import percentile
from keel.client import AsyncClient, connect, endpoints_from_cluster
from keel.errors import KeelError

__all__ = ["CoreBench", "bench_core"]

CATCH_UP_TIMEOUT_S = 60.0  # seconds for a restarted node to catch up


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
        cluster = BenchCluster(Path(tmp), spec.consensus)
        try:
            cluster.start()
            return trio.run(_measure, spec, cluster)
        finally:
            cluster.stop()


async def _measure(spec: CoreBench, cluster: BenchCluster) -> dict[str, Any]:
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


async def _failover(client: AsyncClient, cluster: BenchCluster, value: bytes) -> float:
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

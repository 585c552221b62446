"""`keel bench data`: the data cluster on 3 core + 3 data nodes, durable records, through the client library.

What it measures, on one machine (every node and the client share its cores):

- `p50_ms`, `p99_ms`: latency of one client putting in sequence;
- `writes_per_s`: puts acknowledged per second with `clients` writers at
  once (N=3, W=2, `value_bytes` values, keys spread over every partition);
- `reads_per_s`: gets answered per second, as many at once (R=2);
- `core_requests_per_data_op`: client calls the core nodes took during the
  two runs (their own counters, summed) per data operation: what the data
  path costs the core. Data nodes keep their lease alive and poll their
  watches, so it is not quite 0;
- `sync_bytes`: the bytes an anti-entropy exchange costs two replicas of
  100,000 keys that differ in 10, beside the bytes of sending every key's
  digest (`keel.data.sync_cost`);
- `busiest_messages_per_op`: in memory, without the network, the messages
  the busiest data node sends and receives per operation with 3, 6 and 12
  data nodes (half puts, half gets, coordinated by a replica, as the
  client sends them); the core's share per operation is 0 at any size.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
import trio

from keel import plugins, wire
from keel.bench.cluster import START_TIMEOUT_S, BenchCluster
from keel.bench.core import _rate
from keel.bench.stats import percentile
from keel.client import connect, endpoints_from_cluster
from keel.contract import Kind
from keel.data.api import DataCall
from keel.data.bucket import BucketSpec
from keel.data.placement import place
from keel.data.server import DataServer, MemoryRecords
from keel.data.sync_cost import sync_cost
from keel.errors import KeelError, Unavailable

__all__ = ["DataBench", "bench_data", "messages_per_op"]


@attrs.frozen(kw_only=True)
class DataBench:
    """What to run."""

    consensus: str = "raft"
    clients: int = 64
    writes: int = 20_000
    reads: int = 20_000
    sequential: int = 1_000
    value_bytes: int = 256
    sizes: tuple[int, ...] = (3, 6, 12)  # data nodes, for messages per operation


def bench_data(spec: DataBench) -> dict[str, Any]:
    """Start the cluster, measure, stop it; the figures as a JSON-ready dict."""
    with tempfile.TemporaryDirectory(prefix="keel-bench-") as tmp:
        cluster = BenchCluster(Path(tmp), spec.consensus, data=3)
        try:
            cluster.start()
            figures = trio.run(_measure, spec, cluster)
        finally:
            cluster.stop()
    cost = sync_cost(100_000, 10)
    figures["sync_bytes_100k_keys_10_differ"] = cost.bytes
    figures["all_digests_bytes_100k_keys"] = cost.full_bytes
    figures["busiest_messages_per_op"] = {str(n): messages_per_op(n) for n in spec.sizes}
    return figures


async def _measure(spec: DataBench, cluster: BenchCluster) -> dict[str, Any]:
    value = b"v" * spec.value_bytes
    async with connect(endpoints_from_cluster(cluster.file)) as client:
        bucket = client.bucket()
        with trio.fail_after(START_TIMEOUT_S):
            while True:  # the first map comes once the data nodes' membership settles
                try:
                    await bucket.put(b"warm", value)
                    break
                except Unavailable:
                    await trio.sleep(0.2)
        samples = []
        for i in range(spec.sequential):
            started = time.perf_counter()
            await bucket.put(f"seq/{i}", value)
            samples.append(time.perf_counter() - started)
        before = await _core_requests(client)
        writes_s = await _rate(spec.clients, spec.writes, lambda i: bucket.put(f"load/{i}", value))
        reads_s = await _rate(spec.clients, spec.reads, lambda i: bucket.get(f"load/{i % spec.writes}"))
        core_requests = await _core_requests(client) - before
    return {
        "consensus": spec.consensus,
        "value_bytes": spec.value_bytes,
        "clients": spec.clients,
        "n_r_w": "3/2/2",
        "writes_per_s": round(writes_s),
        "reads_per_s": round(reads_s),
        "p50_ms": round(percentile(samples, 50) * 1e3, 3),
        "p99_ms": round(percentile(samples, 99) * 1e3, 3),
        "core_requests_per_data_op": round(core_requests / (spec.writes + spec.reads), 4),
    }


async def _core_requests(client: Any) -> int:
    try:
        return sum(status.requests for status in await client.node_status())
    except KeelError:
        return 0


def messages_per_op(nodes: int, *, operations: int = 2_000, seed: int = 0) -> float:
    """The busiest data node's messages (sent and received) per operation, `nodes` data nodes, in memory."""
    loaded = plugins.load()
    stores = {name: loaded.get(Kind.STORE, name, field="store") for name in loaded.names(Kind.STORE)}
    ids = [f"d{i}" for i in range(1, nodes + 1)]
    pmap = place(None, ids)
    assert pmap is not None
    servers = {}
    for node in ids:
        server = DataServer(node, stores=stores, records=MemoryRecords(), rng=random.Random(node), sync_every=0)
        server.set_map(pmap)
        server.set_buckets({"default": BucketSpec("default", "lww")})
        server.tick(0.0, 1_700_000_000.0)
        servers[node] = server
    counts = dict.fromkeys(ids, 0)
    rng = random.Random(seed)
    for i in range(operations):
        key = f"k{rng.randrange(operations // 2)}".encode()
        replicas = pmap.readers_for(pmap.partition_for(key))
        op, args = ("put", [b"v"]) if i % 2 == 0 else ("get", [])
        servers[rng.choice(replicas)].request(i, DataCall("default", key, op, wire.encode_plain(args)))
        moved = True
        while moved:
            moved = False
            for node in ids:
                out = servers[node].poll()
                for dst, message in (*out.send_early, *out.send):
                    counts[node] += 1
                    counts[dst] += 1
                    servers[dst].receive(node, message)
                    moved = True
    return round(max(counts.values()) / operations, 3)

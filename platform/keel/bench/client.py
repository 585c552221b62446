"""`keel bench client`: the three doors of the client against one local 3-node core.

What it measures, on one machine (nodes and client share its cores):

- `async_p50_ms`/`p99_ms`, `blocking_…`, `asyncio_…`: latency of one
  caller writing in sequence through `keel.connect`, `keel.Client` and
  `keel.aio.connect`; the doors take turns in `rounds` rounds, each with a
  client of its own warmed up first, so a drift of the machine's load
  touches all three alike;
- `blocking_p50_over_async`: the price of the hand-over to the background
  loop and back (target: at most 1.5);
- `async_tasks_calls_per_s`: calls per second of `threads` tasks sharing
  one async client, each one call in flight; `blocking_threads_calls_per_s`:
  the same with `threads` threads sharing one `keel.Client`; the calls are
  puts, gets and compare-and-sets in turn; `threads_over_tasks`: their
  ratio (target: at least 0.7).

The cluster (`BenchCluster`, Raft unless told) lives in a temporary
directory and every process it started is killed, by PID, at the end.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from keel.bench.cluster import START_TIMEOUT_S, BenchCluster
from keel.bench.stats import percentile
from keel.client import AioClient, AsyncClient, Client, connect, connect_asyncio, endpoints_from_cluster
from keel.errors import KeelError

__all__ = ["ClientBench", "bench_client"]

WARM_UP = 20  # calls each new client makes before it is timed: connections opened, leader found
LOAD_KEYS = 100  # keys the throughput runs spread their calls over


@attrs.frozen(kw_only=True)
class ClientBench:
    """What to run."""

    consensus: str = "raft"
    sequential: int = 1_000  # calls per door in the latency runs, over all rounds
    rounds: int = 5
    threads: int = 8
    calls: int = 6_000  # calls per door in the throughput runs, over all rounds
    value_bytes: int = 256


def bench_client(spec: ClientBench) -> dict[str, Any]:
    """Start the cluster, measure, stop it; the figures as a JSON-ready dict."""
    with tempfile.TemporaryDirectory(prefix="keel-bench-client-") as tmp:
        cluster = BenchCluster(Path(tmp), spec.consensus)
        try:
            cluster.start()
            return _measure(spec, cluster)
        finally:
            cluster.stop()


def _measure(spec: ClientBench, cluster: BenchCluster) -> dict[str, Any]:
    endpoints = endpoints_from_cluster(cluster.file)
    value = b"v" * spec.value_bytes
    _wait_for_leader(endpoints)
    latency: dict[str, list[float]] = {"async": [], "blocking": [], "asyncio": []}
    per_round = max(1, spec.sequential // spec.rounds)
    for _ in range(spec.rounds):
        latency["async"] += trio.run(_async_sequence, endpoints, value, per_round)
        latency["blocking"] += _blocking_sequence(endpoints, value, per_round)
        latency["asyncio"] += asyncio.run(_asyncio_sequence(endpoints, value, per_round))
    busy = {"async": 0.0, "blocking": 0.0}
    calls_per_round = max(spec.threads, spec.calls // spec.rounds)
    for _ in range(spec.rounds):
        busy["async"] += trio.run(_async_tasks, endpoints, value, spec.threads, calls_per_round)
        busy["blocking"] += _blocking_threads(endpoints, value, spec.threads, calls_per_round)
    figures: dict[str, Any] = {"consensus": spec.consensus, "value_bytes": spec.value_bytes}
    for door, samples in latency.items():
        figures[f"{door}_p50_ms"] = round(percentile(samples, 50) * 1e3, 3)
        figures[f"{door}_p99_ms"] = round(percentile(samples, 99) * 1e3, 3)
    figures["blocking_p50_over_async"] = round(figures["blocking_p50_ms"] / figures["async_p50_ms"], 2)
    total = calls_per_round * spec.rounds
    tasks_rate, threads_rate = total / busy["async"], total / busy["blocking"]
    figures.update({
        "threads": spec.threads,
        "async_tasks_calls_per_s": round(tasks_rate),
        "blocking_threads_calls_per_s": round(threads_rate),
        "threads_over_tasks": round(threads_rate / tasks_rate, 2),
    })
    return figures


def _wait_for_leader(endpoints: Any) -> None:
    with Client(endpoints) as c:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not any(s.role == "leader" for s in c.node_status()):
            if time.monotonic() > deadline:
                raise KeelError(f"bench client: no core leader within {START_TIMEOUT_S:g} s")
            time.sleep(0.05)


# --- one caller in sequence ---------------------------------------------------------------------


async def _async_sequence(endpoints: Any, value: bytes, count: int) -> list[float]:
    async with connect(endpoints) as c:
        for i in range(WARM_UP):
            await c.put(f"seq/{i}", value)
        samples = []
        for i in range(count):
            started = time.perf_counter()
            await c.put(f"seq/{i % 100}", value)
            samples.append(time.perf_counter() - started)
    return samples


def _blocking_sequence(endpoints: Any, value: bytes, count: int) -> list[float]:
    with Client(endpoints) as c:
        for i in range(WARM_UP):
            c.put(f"seq/{i}", value)
        samples = []
        for i in range(count):
            started = time.perf_counter()
            c.put(f"seq/{i % 100}", value)
            samples.append(time.perf_counter() - started)
    return samples


async def _asyncio_sequence(endpoints: Any, value: bytes, count: int) -> list[float]:
    async with connect_asyncio(endpoints) as c:
        for i in range(WARM_UP):
            await c.put(f"seq/{i}", value)
        samples = []
        for i in range(count):
            started = time.perf_counter()
            await c.put(f"seq/{i % 100}", value)
            samples.append(time.perf_counter() - started)
    return samples


# --- many callers sharing one client ---------------------------------------------------------------


async def _async_call(c: AsyncClient | AioClient, i: int, value: bytes) -> None:
    key = f"load/{i % LOAD_KEYS}"
    if i % 3 == 0:
        await c.put(key, value)
    elif i % 3 == 1:
        await c.get(key)
    else:
        await c.cas(key, value, value)


def _blocking_call(c: Client, i: int, value: bytes) -> None:
    key = f"load/{i % LOAD_KEYS}"
    if i % 3 == 0:
        c.put(key, value)
    elif i % 3 == 1:
        c.get(key)
    else:
        c.cas(key, value, value)


async def _async_tasks(endpoints: Any, value: bytes, workers: int, total: int) -> float:
    """Seconds `workers` tasks sharing one async client take for `total` calls."""
    async with connect(endpoints) as c:
        for i in range(WARM_UP):
            await _async_call(c, i, value)
        counter = iter(range(total))

        async def work() -> None:
            for i in counter:
                await _async_call(c, i, value)

        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(workers):
                nursery.start_soon(work)
        return time.perf_counter() - started


def _blocking_threads(endpoints: Any, value: bytes, workers: int, total: int) -> float:
    """Seconds `workers` threads sharing one `keel.Client` take for `total` calls."""
    with Client(endpoints) as c:
        for i in range(WARM_UP):
            _blocking_call(c, i, value)
        counter = iter(range(total))
        taking = threading.Lock()  # a shared iterator is not safe across threads
        failed: list[BaseException] = []

        def next_index() -> int | None:
            with taking:
                return next(counter, None)

        def work(take: Callable[[], int | None]) -> None:
            try:
                while (i := take()) is not None:
                    _blocking_call(c, i, value)
            except BaseException as exc:  # noqa: BLE001 - raised in the measuring thread below
                failed.append(exc)

        threads = [threading.Thread(target=work, args=(next_index,), daemon=True) for _ in range(workers)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        took = time.perf_counter() - started
        if failed:
            raise failed[0]
        return took

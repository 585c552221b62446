"""How fast a transport plugin carries messages between two endpoints on 127.0.0.1."""

from __future__ import annotations

import time
from typing import Any

import trio

from keel import plugins
from keel.address import Address
from keel.bench.messages import Blob
from keel.bench.stats import percentile
from keel.contract import Kind
from keel.transport import ClientSettings, TransportSettings

__all__ = ["bench_transport"]

PAYLOAD = 256  # bytes per message
BACKOFF_S = 0.0005  # seconds a sender waits when the peer's buffer is full
DEADLINE_S = 120.0  # seconds the whole benchmark may take before it gives up
CONCURRENT = 64  # requests in flight for the throughput figure


def _settings(node_id: str, peers: tuple[tuple[str, Address], ...]) -> TransportSettings:
    local = Address("127.0.0.1", 0)
    return TransportSettings(node_id=node_id, listen_peer=local, listen_client=local, advertise_peer=local, peers=peers)


async def _echo(request: Any) -> Any:
    return request


async def _measure(name: str, messages: int, requests: int) -> dict[str, Any]:
    plugin = plugins.load().get(Kind.TRANSPORT, name, field="--transport")
    receiver = plugin.create(_settings("b", ()))
    result: dict[str, Any] = {"transport": name, "payload_bytes": PAYLOAD}
    with trio.fail_after(DEADLINE_S):
        async with trio.open_nursery() as nursery:
            bound_b = await nursery.start(receiver.serve, _echo)
            sender = plugin.create(_settings("a", (("b", bound_b.peer),)))
            await nursery.start(sender.serve, _echo)
            payload = b"x" * PAYLOAD

            # One-way: a stream of messages from a to b, as a leader streams appends.
            start = time.perf_counter()
            async def drain() -> None:
                for _ in range(messages):
                    await receiver.receive()

            async with trio.open_nursery() as inner:
                inner.start_soon(drain)
                seq = 0
                while seq < messages:
                    if sender.send("b", Blob(seq=seq, key="k", payload=payload)):
                        seq += 1
                    else:
                        await trio.sleep(BACKOFF_S)
                    if seq % 256 == 0:
                        await trio.sleep(0)
            elapsed = time.perf_counter() - start
            result["oneway_msgs_per_s"] = round(messages / elapsed)

            # Request/response: one client in sequence, then many in flight.
            client = await plugin.connect(bound_b.client, ClientSettings())
            latencies = []
            for i in range(requests):
                t0 = time.perf_counter()
                await client.request(Blob(seq=i, key="k", payload=payload), timeout=5.0)
                latencies.append((time.perf_counter() - t0) * 1000)
            result["request_p50_ms"] = round(percentile(latencies, 50), 3)
            result["request_p99_ms"] = round(percentile(latencies, 99), 3)

            start = time.perf_counter()
            async def worker(n: int) -> None:
                for i in range(n):
                    await client.request(Blob(seq=i, key="k", payload=payload), timeout=10.0)

            async with trio.open_nursery() as inner:
                for _ in range(CONCURRENT):
                    inner.start_soon(worker, requests // CONCURRENT)
            done = (requests // CONCURRENT) * CONCURRENT
            result[f"requests_per_s_{CONCURRENT}_in_flight"] = round(done / (time.perf_counter() - start))
            await client.aclose()
            nursery.cancel_scope.cancel()
    return result


def bench_transport(name: str = "tcp", *, messages: int = 100_000, requests: int = 5_000) -> dict[str, Any]:
    """One-way messages per second, and request latency and throughput, over `name`."""
    return trio.run(_measure, name, messages, requests)

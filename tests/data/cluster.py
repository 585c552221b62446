"""Data servers wired to each other in memory, for tests: calls, a pump that delivers, nodes that go down."""

from __future__ import annotations

import random
from typing import Any

from keel import plugins, wire
from keel.contract import Kind
from keel.data.api import DataCall
from keel.data.bucket import BucketSpec
from keel.data.partition_map import PartitionMap, Placement
from keel.data.server import DataServer, MemoryRecords, StoredBatch
from keel.transport.envelope import ErrorReply

T0 = 1_700_000_000.0


def store_plugins() -> dict[str, Any]:
    loaded = plugins.load()
    return {name: loaded.get(Kind.STORE, name, field="store") for name in loaded.names(Kind.STORE)}


class Cluster:
    """`nodes` data servers, every partition on all of them (or as `placements` says)."""

    def __init__(self, nodes: tuple[str, ...] = ("d1", "d2", "d3"), *, partitions: int = 8,
                 placements: list[Placement] | None = None, buckets: tuple[BucketSpec, ...] = (BucketSpec("default", "lww"),),
                 server: type[DataServer] = DataServer) -> None:
        self.ids = nodes
        self.server_class = server
        self.disks: dict[str, list[StoredBatch]] = {n: [] for n in nodes}
        self.map = PartitionMap(epoch=1, replicas=min(3, len(nodes)),
                                placements=placements or [Placement(owners=nodes[:3])] * partitions)
        self.buckets = {b.name: b for b in buckets}
        self.servers: dict[str, DataServer] = {}
        self.down: set[str] = set()
        self.now = 0.0
        self.replies: dict[Any, Any] = {}
        self.events: list[Any] = []
        self.ready: set[tuple[str, int, int]] = set()  # (node, partition, epoch) reported ready
        self._refs = 0
        for node in nodes:
            self.start(node)

    def start(self, node: str) -> DataServer:
        """(Re)build `node` from what it persisted."""
        records = MemoryRecords(tuple(self.disks[node]))
        server = self.server_class(node, stores=store_plugins(), records=records, rng=random.Random(node),
                                   clock_floor=records.high_water)
        server.set_map(self.map)
        server.set_buckets(self.buckets)
        server.tick(self.now, T0 + self.now)
        self.servers[node] = server
        self.down.discard(node)
        return server

    def follow(self, pmap: PartitionMap) -> None:
        """Every node follows `pmap`, as it would from the core."""
        self.map = pmap
        for node, server in self.servers.items():
            if node not in self.down:
                server.set_map(pmap)
        self.pump()

    def crash(self, node: str) -> None:
        self.down.add(node)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for node, server in self.servers.items():
            if node not in self.down:
                server.tick(self.now, T0 + self.now)
        self.pump()

    def call(self, node: str, key: bytes, op: str, *args: Any, bucket: str = "default", **extra: Any) -> Any:
        """Send one call to `node`, deliver until quiet, return its reply (None: none yet)."""
        self._refs += 1
        ref = self._refs
        self.servers[node].request(ref, DataCall(bucket, key, op, wire.encode_plain(list(args)), **extra))
        self.pump()
        return self.replies.pop(ref, None)

    def value(self, reply: Any) -> Any:
        assert not isinstance(reply, ErrorReply), reply
        return wire.decode_plain(reply.result, "result")

    def pump(self) -> None:
        moved = True
        while moved:
            moved = False
            for node in self.ids:
                if node in self.down:
                    continue
                out = self.servers[node].poll()
                self.disks[node].extend(out.persist)
                self.events.extend(out.events)
                self.ready.update((node, partition, epoch) for partition, epoch in out.ready)
                for ref, reply in out.replies:
                    self.replies[ref] = reply
                for dst, message in (*out.send_early, *out.send):
                    moved = True
                    if dst not in self.down:
                        self.servers[dst].receive(node, wire.decode(wire.encode(message)))
                moved = moved or bool(out.replies)

    def held(self, node: str, bucket: str = "default") -> dict[bytes, bytes]:
        records = self.servers[node].records
        assert isinstance(records, MemoryRecords)
        return {key: data for (b, _p, key), data in records.held.items() if b == bucket}

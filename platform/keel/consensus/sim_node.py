"""Any consensus engine plus a tiny key-value machine, as `keel.sim` nodes, for engine tests.

`engine_cluster` gives a `Simulation` one `EngineNode` per node id, each
driving the engine under test with `KvMachine`: commands `key=value` set a
key, anything else only counts. Engine plugins use it for their own
simulations; the conformance suite runs a richer service on the same driver.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import cbor2

from keel.consensus.driver import EngineNode
from keel.consensus.engine import EngineFactory, EngineSettings
from keel.consensus.log_ops import Entry, EntryKind
from keel.sim import NodeFactory

__all__ = ["KvMachine", "engine_cluster"]


class KvMachine:
    """A key-value map applied from commands `key=value`; other commands only count.

    `digest` chains every applied index and command, so two machines with
    equal digests at one index applied the same history up to it.
    """

    def __init__(self) -> None:
        self.index = 0
        self.digest = b""
        self.data: dict[bytes, bytes] = {}

    def apply(self, entry: Entry) -> None:
        self.index = entry.index
        if entry.kind is EntryKind.COMMAND:
            self.digest = hashlib.sha256(self.digest + entry.index.to_bytes(8, "big") + entry.data).digest()
            key, sep, value = entry.data.partition(b"=")
            if sep:
                self.data[key] = value

    def read(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def snapshot(self) -> bytes:
        return cbor2.dumps({"index": self.index, "digest": self.digest, "data": self.data}, canonical=True)

    def restore(self, blob: bytes) -> None:
        state = cbor2.loads(blob)
        self.index, self.digest, self.data = state["index"], state["digest"], dict(state["data"])


def engine_cluster(create: EngineFactory, node_ids: Iterable[str], *, voters: Iterable[str] | None = None,
                   snapshot_every: int = 0, **settings: Any) -> Mapping[str, NodeFactory]:
    """Node factories for a `Simulation`: every node runs `create` with the same settings.

    Args:
        create: the engine factory.
        node_ids: every node of the simulation.
        voters: the initial voters (default: every node); the others start
            outside the configuration and join through membership changes.
        snapshot_every: see `EngineNode`.
        settings: further `EngineSettings` fields (heartbeat, options…).
    """
    ids = tuple(sorted(node_ids))
    initial = tuple(sorted(voters)) if voters is not None else ids
    return {
        node_id: functools.partial(EngineNode.from_durable, create=create, snapshot_every=snapshot_every,
                                   machine=KvMachine,
                                   settings=EngineSettings(node_id=node_id, voters=initial, **settings))
        for node_id in ids
    }

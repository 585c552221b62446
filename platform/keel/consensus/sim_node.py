"""Any consensus engine plus an in-memory key-value state machine, as one `keel.sim` node.

The simulator drives sans-I/O nodes; an engine is one, but it needs a
driver around it that does what a real node's driver does with each
`Ready`. `EngineNode` is that driver, small enough to read in one sitting:

- `persist` goes to the simulated disk as is (the log operations are wire
  records). When a `Ready` installs a snapshot, its data is written first as
  a `StoredSnapshot`, so it is durable no later than the `CompactTo` that
  relies on it; so is a snapshot this node takes itself.
- `send` becomes `(dst, message)` pairs, which the simulator releases only
  once everything written so far is durable. A message addressed to this
  node itself goes through the simulated network like any other (a real
  driver hands it straight back); engines must not rely on it arriving.
- `install` replaces the state machine; `committed` is applied in order,
  and the node fails the run (AssertionError) if an engine hands out an
  index twice, skips one, or installs a snapshot at or below what it applied.
- `reads` are answered once the state machine reached their index; reads
  still unanswered when the node stops leading are reported abandoned.
- Every `snapshot_every` applied entries the node snapshots its state
  machine and tells the engine (`snapshot_taken`), so engines compact their
  logs and ship snapshots during a run.

After a crash the simulator rebuilds the node from its durable records: the
log operations are folded with `LogState` into the `Recovered` the engine
starts from, the state machine is restored from the snapshot the log was
compacted to, and the engine gets that snapshot's data back through
`snapshot_taken`. The engine's committed entries then continue after the
snapshot's index, so the fresh state machine re-applies the log's suffix
and nothing twice.

The events the node reports (`Applied`, `Installed`, `ReadServed`,
`ReadAbandoned`, and the engine's own `RoleChanged`/`LeaderChanged`) are
what checkers read: the same index must carry the same command and the same
state-machine digest on every node.
"""

from __future__ import annotations

import functools
import hashlib
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import attrs
import cbor2

from keel import wire
from keel.consensus.engine import Engine, EngineFactory, EngineSettings, Ready, RoleChanged
from keel.consensus.log_ops import Entry, EntryKind, LogState, SnapshotMeta
from keel.sim import NodeFactory, Output

__all__ = [
    "Applied",
    "EngineNode",
    "Installed",
    "KvMachine",
    "Machine",
    "ReadAbandoned",
    "ReadServed",
    "StoredSnapshot",
    "engine_cluster",
]


@wire.message("keel.sim_node.snapshot")
@attrs.frozen
class StoredSnapshot:
    """Durable record: the state machine's snapshot at `meta.index`."""

    meta: SnapshotMeta
    data: bytes


@attrs.frozen
class Applied:
    """Event: the state machine applied the command at `index`; `digest` is its state after."""

    index: int
    term: int
    command: bytes
    digest: bytes
    result: Any = None  # what the machine's `apply` returned


@attrs.frozen
class Installed:
    """Event: the state machine was replaced by a snapshot at `index`."""

    index: int
    digest: bytes


@attrs.frozen
class ReadServed:
    """Event: read barrier `request` was answered with the state machine at `applied` (>= `index`)."""

    request: int
    index: int
    applied: int
    value: Any  # the machine's answer for the key, for reads that named one


@attrs.frozen
class ReadAbandoned:
    """Event: read barrier `request` will never be answered (the node stopped leading)."""

    request: int


class Machine(Protocol):
    """The state machine an `EngineNode` applies committed entries to.

    `digest` must chain every applied index and command, so two machines
    with equal digests at one index applied the same history up to it.
    """

    index: int  # the last index applied (or restored from a snapshot)
    digest: bytes

    def apply(self, entry: Entry) -> Any:
        """Apply one committed entry (of any kind); return the command's result."""

    def read(self, key: Any) -> Any:
        """The value a read of `key` returns now."""

    def snapshot(self) -> bytes:
        """The whole state, for `restore`."""

    def restore(self, blob: bytes) -> None:
        """Replace the whole state with a `snapshot`."""


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


class EngineNode:
    """Drives one engine like a node's driver would; a `keel.sim.Node`.

    Args:
        node_id, durable, rng: what the simulator hands every node factory.
        create: the engine factory under test.
        settings: the engine's settings (its `node_id` must be this node's).
        snapshot_every: applied entries between snapshots; 0 never snapshots.
        machine: makes the state machine (default: `KvMachine`).
    """

    def __init__(self, node_id: str, durable: tuple[Any, ...], rng: random.Random, *, create: EngineFactory,
                 settings: EngineSettings, snapshot_every: int = 0,
                 machine: Callable[[], Machine] = KvMachine) -> None:
        if settings.node_id != node_id:
            raise ValueError(f"sim node {node_id!r}: settings are for {settings.node_id!r}")
        self.node_id = node_id
        self.snapshot_every = snapshot_every
        self.written = LogState()  # the log as this node wrote it, durable or not (for checkers)
        stored: dict[int, StoredSnapshot] = {}
        for record in durable:
            if isinstance(record, StoredSnapshot):
                stored[record.meta.index] = record
            else:
                self.written.apply(record)
        self.machine = machine()
        self.engine: Engine = create(settings, self.written.recovered(), rng)
        snapshot = self.written.snapshot
        if snapshot is not None:
            if snapshot.index not in stored:
                raise AssertionError(f"{node_id}: the log was compacted to {snapshot.index} but that snapshot was never stored")
            self.machine.restore(stored[snapshot.index].data)
            self.engine.snapshot_taken(snapshot, stored[snapshot.index].data)
        self.snapshot_index = self.machine.index
        self.last_term = snapshot.term if snapshot is not None else 0
        self._asked: list[tuple[int, Any]] = []  # read barriers the engine has not answered: (request, key)
        self._ready: list[tuple[int, int, Any]] = []  # answered, waiting for the machine: (request, index, key)

    # --- the sim Node protocol -------------------------------------------------

    def tick(self, now: float) -> None:
        self.engine.tick(now)

    def receive(self, src: str, message: Any) -> None:
        self.engine.receive(src, message)

    def poll(self) -> Output:
        persist: list[Any] = []
        send: list[tuple[str, Any]] = []
        events: list[Any] = []
        self._carry_out(self.engine.poll(), persist, send, events)
        if self.snapshot_every and self.machine.index - self.snapshot_index >= self.snapshot_every:
            meta = SnapshotMeta(index=self.machine.index, term=self.last_term)
            blob = self.machine.snapshot()
            persist.append(StoredSnapshot(meta, blob))
            self.snapshot_index = self.machine.index
            self.engine.snapshot_taken(meta, blob)
            self._carry_out(self.engine.poll(), persist, send, events)
        return Output(persist=persist, send=send, events=events)

    # --- what a test's client does -----------------------------------------------

    def propose(self, command: bytes) -> int:
        """Propose through the engine; raises whatever it raises (NotLeader…)."""
        return self.engine.propose(command)

    def read(self, request: int, key: Any = None) -> None:
        """Ask for a linearizable read of `key` (or just a barrier); raises what the engine raises."""
        self.engine.read_barrier(request)
        self._asked.append((request, key))

    # --- carrying out a Ready ------------------------------------------------------

    def _carry_out(self, ready: Ready, persist: list[Any], send: list[tuple[str, Any]], events: list[Any]) -> None:
        if ready.install is not None:
            meta, blob = ready.install.meta, ready.install.data
            if meta.index <= self.machine.index:
                raise AssertionError(f"{self.node_id}: snapshot at {meta.index} would undo applied entries up to {self.machine.index}")
            persist.append(StoredSnapshot(meta, blob))
            self.machine.restore(blob)
            self.snapshot_index, self.last_term = meta.index, meta.term
            events.append(Installed(meta.index, self.machine.digest))
        for op in ready.persist:
            self.written.apply(op)
        persist.extend(ready.persist)
        send.extend((out.dst, out.message) for out in ready.send)
        for entry in ready.committed:
            if entry.index != self.machine.index + 1:
                raise AssertionError(f"{self.node_id}: engine committed index {entry.index} after {self.machine.index}")
            result = self.machine.apply(entry)
            self.last_term = entry.term
            if entry.kind is EntryKind.COMMAND:
                events.append(Applied(entry.index, entry.term, entry.data, self.machine.digest, result))
        keys = dict(self._asked)
        self._ready.extend((read.request, read.index, keys.get(read.request)) for read in ready.reads)
        answered = {read.request for read in ready.reads}
        self._asked = [(request, key) for request, key in self._asked if request not in answered]
        still = []
        for request, index, key in self._ready:
            if index <= self.machine.index:
                value = self.machine.read(key) if key is not None else None
                events.append(ReadServed(request, index, self.machine.index, value))
            else:
                still.append((request, index, key))
        self._ready = still
        events.extend(ready.events)
        if any(isinstance(e, RoleChanged) and e.role != "leader" for e in ready.events):
            events.extend(ReadAbandoned(request) for request, _ in self._asked)
            self._asked = []


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
        node_id: functools.partial(EngineNode, create=create, snapshot_every=snapshot_every,
                                   settings=EngineSettings(node_id=node_id, voters=initial, **settings))
        for node_id in ids
    }

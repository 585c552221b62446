"""EngineNode: the sans-I/O driver around any engine, its state machine and its snapshots.

An engine returns `Ready`s; something must carry each out in the
contract's order. `EngineNode` does all of it that needs no I/O, so that
the Trio runtime (`keel.node`) and the simulator (`keel.sim`) share one
driver and differ only in where records go:

- `persist` is handed on as is (the log operations are wire records). When
  a `Ready` installs a snapshot, its data is handed on first as a
  `StoredSnapshot`, so it is durable no later than the `CompactTo` that
  relies on it; so is a snapshot this node takes itself. The Trio runtime
  writes snapshots to `keel.core.log.SnapshotStore` and the rest to the
  durable log; the simulator to its disk.
- `send` becomes `(dst, message)` pairs, which the caller releases only
  once everything persisted so far is durable; `send_early` once what
  earlier polls persisted is (a second `Ready` in one poll sends its early
  messages with `send`, since the first one's persist precedes it). A message addressed to this
  node itself must come back through `receive` once durable (engines use it
  to count their own log as replicated); engines must not rely on it
  arriving.
- `install` replaces the state machine; `committed` is applied in order,
  and the node fails (AssertionError) if an engine hands out an index
  twice, skips one, or installs a snapshot at or below what it applied.
- `reads` are answered once the state machine reached their index; reads
  still unanswered when the node stops leading are reported abandoned.
- Every `snapshot_every` applied entries the node snapshots its state
  machine and tells the engine (`snapshot_taken`), so engines compact their
  logs and ship snapshots.

A node starts from what survived: the log operations folded into a
`Recovered` and the snapshot the log was compacted to (`from_durable` folds
a simulated disk's records). The state machine is restored from the
snapshot, and the engine gets the snapshot's data back through
`snapshot_taken`; its committed entries then continue after the snapshot's
index, so the machine re-applies the log's suffix and nothing twice.

The events the node reports (`Applied`, `Installed`, `ReadServed`,
`ReadAbandoned`, and the engine's own `RoleChanged`/`LeaderChanged`) are
what servers answer clients from, and what checkers read.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Protocol

import attrs

from keel import wire
from keel.consensus.engine import Engine, EngineFactory, EngineSettings, Ready, RoleChanged
from keel.consensus.log_ops import Entry, EntryKind, LogState, Recovered, SnapshotMeta
from keel.errors import StorageError
from keel.sim import Output

__all__ = ["Applied", "EngineNode", "Installed", "Machine", "ReadAbandoned", "ReadServed", "StoredSnapshot", "fold_durable"]


@wire.message("keel.consensus.snapshot")
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


def fold_durable(durable: tuple[Any, ...]) -> tuple[Recovered, StoredSnapshot | None]:
    """The log and the snapshot it was compacted to, from a simulated disk's records in write order."""
    written = LogState()
    stored: dict[int, StoredSnapshot] = {}
    for record in durable:
        if isinstance(record, StoredSnapshot):
            stored[record.meta.index] = record
        else:
            written.apply(record)
    kept = stored.get(written.snapshot.index) if written.snapshot is not None else None
    return written.recovered(), kept


class EngineNode:
    """Drives one engine like a node's driver would; also a `keel.sim.Node`.

    Args:
        node_id: this node's id (the engine's settings must carry it).
        create: the engine factory.
        settings: the engine's settings.
        rng: the engine's only randomness.
        recovered: the log as it survived (default: a first boot).
        snapshot: the snapshot the log was compacted to, if it was.
        snapshot_every: applied entries between snapshots; 0 never snapshots.
        machine: makes the state machine.
        defer_snapshots: hand due snapshots to the driver to encode (the
            machine then needs `capture()` and a static `encode(capture)`).

    Raises:
        StorageError: the log was compacted to a snapshot older than the one given, or none was given.
    """

    def __init__(self, node_id: str, *, create: EngineFactory, settings: EngineSettings, rng: random.Random,
                 recovered: Recovered | None = None, snapshot: StoredSnapshot | None = None,
                 snapshot_every: int = 0, machine: Callable[[], Machine], defer_snapshots: bool = False) -> None:
        if settings.node_id != node_id:
            raise ValueError(f"engine node {node_id!r}: settings are for {settings.node_id!r}")
        recovered = recovered if recovered is not None else Recovered()
        self.node_id = node_id
        self.snapshot_every = snapshot_every
        # Deferred: a due snapshot becomes `snapshot_job` (meta, the machine's `capture()`) for the
        # driver to encode off the event loop and hand back through `snapshot_encoded`.
        self.defer_snapshots = defer_snapshots
        self.snapshot_job: tuple[SnapshotMeta, Any] | None = None
        self._encoded: list[tuple[SnapshotMeta, bytes]] = []
        self._installed = 0  # index of the last snapshot installed from a leader
        self.machine = machine()
        self.engine: Engine = create(settings, recovered, rng)
        compacted = recovered.snapshot
        floor = compacted.index if compacted is not None else 0
        if snapshot is not None and snapshot.meta.index < floor or snapshot is None and compacted is not None:
            raise StorageError(f"{node_id}: the log was compacted to {floor} but that snapshot was never stored "
                                 f"(the newest stored is {snapshot.meta.index if snapshot else None})")
        # A snapshot ahead of the log's compaction: saved, then the node stopped
        # before the log was compacted to it. The machine starts from it, the
        # entries it covers are skipped as the engine commits them again, and
        # the engine hears of it once it has committed that far.
        self._offer: StoredSnapshot | None = None
        if snapshot is not None:
            self.machine.restore(snapshot.data)
            if compacted is not None and snapshot.meta.index == floor:
                self.engine.snapshot_taken(compacted, snapshot.data)
            else:
                self._offer = snapshot
        self.snapshot_index = self.machine.index
        self.last_term = snapshot.meta.term if snapshot is not None else 0
        self._asked: list[tuple[int, Any]] = []  # read barriers the engine has not answered: (request, key)
        self._ready: list[tuple[int, int, Any]] = []  # answered, waiting for the machine: (request, index, key)

    @classmethod
    def from_durable(cls, node_id: str, durable: tuple[Any, ...], rng: random.Random, **kwargs: Any) -> EngineNode:
        """A node rebuilt from a simulated disk's records: what `keel.sim` hands a node factory."""
        recovered, snapshot = fold_durable(durable)
        return cls(node_id, rng=rng, recovered=recovered, snapshot=snapshot, **kwargs)

    # --- the sim Node protocol -------------------------------------------------

    def tick(self, now: float) -> None:
        self.engine.tick(now)

    def receive(self, src: str, message: Any) -> None:
        self.engine.receive(src, message)

    def poll(self) -> Output:
        persist: list[Any] = []
        send: list[tuple[str, Any]] = []
        events: list[Any] = []
        early: list[tuple[str, Any]] = []
        self._carry_out(self.engine.poll(), persist, early, send, events)
        if self._encoded:
            meta, blob = self._encoded.pop(0)
            self._taken(meta, blob, persist, send, events)
        elif self.snapshot_every and self.machine.index - self.snapshot_index >= self.snapshot_every \
                and self.snapshot_job is None:
            meta = SnapshotMeta(index=self.machine.index, term=self.last_term)
            self.snapshot_index = self.machine.index
            if self.defer_snapshots:
                self.snapshot_job = (meta, self.machine.capture())  # type: ignore[attr-defined]
            else:
                self._taken(meta, self.machine.snapshot(), persist, send, events)
        return Output(persist=persist, send_early=early, send=send, events=events)

    def snapshot_encoded(self, meta: SnapshotMeta, blob: bytes) -> None:
        """The driver encoded `snapshot_job` (off the event loop): the next poll persists it."""
        self.snapshot_job = None
        self._encoded.append((meta, blob))

    def _taken(self, meta: SnapshotMeta, blob: bytes, persist: list[Any], send: list[tuple[str, Any]],
               events: list[Any]) -> None:
        if meta.index <= self._installed:
            return  # a snapshot installed from the leader while this one was encoded is newer
        persist.append(StoredSnapshot(meta, blob))
        self.engine.snapshot_taken(meta, blob)
        self._carry_out(self.engine.poll(), persist, send, send, events)  # its early sends wait with the rest

    # --- what a test's client does -----------------------------------------------

    def propose(self, command: bytes) -> int:
        """Propose through the engine; raises whatever it raises (NotLeader…)."""
        return self.engine.propose(command)

    def read(self, request: int, key: Any = None) -> None:
        """Ask for a linearizable read of `key` (or just a barrier); raises what the engine raises."""
        self.engine.read_barrier(request)
        self._asked.append((request, key))

    # --- carrying out a Ready ------------------------------------------------------

    def _carry_out(self, ready: Ready, persist: list[Any], early: list[tuple[str, Any]], send: list[tuple[str, Any]],
                   events: list[Any]) -> None:
        install = ready.install
        if install is not None and self._offer is not None and install.meta.index <= self._offer.meta.index:
            # The machine was restored from a newer snapshot than the leader's, saved before a crash that
            # left the log uncompacted: it stays, and the engine's entries up to it are skipped as before.
            install = None
        if install is not None:
            meta, blob = install.meta, install.data
            if meta.index <= self.machine.index:
                raise AssertionError(f"{self.node_id}: snapshot at {meta.index} would undo applied entries up to {self.machine.index}")
            persist.append(StoredSnapshot(meta, blob))
            self._installed = meta.index
            self.machine.restore(blob)
            self.snapshot_index, self.last_term = meta.index, meta.term
            events.append(Installed(meta.index, self.machine.digest))
        persist.extend(ready.persist)
        early.extend((out.dst, out.message) for out in ready.send_early)
        send.extend((out.dst, out.message) for out in ready.send)
        for entry in ready.committed:
            if self._offer is not None:
                if entry.index <= self._offer.meta.index:
                    continue  # the restored snapshot covers it
                self.engine.snapshot_taken(self._offer.meta, self._offer.data)
                self._offer = None
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

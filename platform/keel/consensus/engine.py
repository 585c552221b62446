"""The contract between a consensus engine and the driver that runs it.

An engine is sans-I/O: a plain object that takes time as `tick(now)`,
messages as `receive(src, message)`, client intent as `propose`,
`read_barrier`, `change_membership` and `transfer_leadership`, and
randomness as one `random.Random` given to its factory. Between calls the
driver polls `poll()` and carries out the `Ready` it returns, in this order:

1. apply `persist` to the durable log and fsync it; `send_early` may leave
   meanwhile, as soon as everything persisted by *earlier* `Ready`s is
   durable (messages that do not depend on this one's persist: a leader's
   appends, since it counts its own log as replicated only once durable);
2. only then send `send` (messages that depend on what was persisted:
   a vote, an acknowledged entry);
3. if `install` is set, replace the state machine with that snapshot;
4. apply `committed` to the state machine, in index order (exactly once
   across the engine's life: the engine never hands out an index twice,
   and after a restart it starts above its snapshot);
5. answer the reads in `reads` once the state machine has applied up to
   each one's index;
6. report `events` to the observation hooks.

The driver may batch: poll after many inputs, persist many `Ready`s with
one fsync (group commit), and keep sending while earlier fsyncs run, as
long as no message leaves before what it depends on is durable.

Engines register through `keel_consensus_engines()` with a factory
`create(settings: EngineSettings, recovered: Recovered, rng: random.Random)`.
"""

from __future__ import annotations

import random
from typing import Any, Protocol

import attrs

from keel.consensus.log_ops import Entry, LogOp, Recovered, SnapshotMeta

__all__ = [
    "Engine",
    "EngineFactory",
    "EngineSettings",
    "EngineStatus",
    "LeaderChanged",
    "MembershipChange",
    "Outbound",
    "Ready",
    "ReadReady",
    "RoleChanged",
    "SnapshotToInstall",
]


@attrs.frozen(kw_only=True)
class EngineSettings:
    """How an engine is set up; its own options come in `options`."""

    node_id: str
    voters: tuple[str, ...]  # the initial voting members, used only when nothing was recovered
    heartbeat: float = 0.05  # seconds between a leader's heartbeats
    election_min: float = 0.15  # seconds; election timeouts are drawn from [min, max)
    election_max: float = 0.30
    max_batch_entries: int = 512  # entries per replication message
    max_batch_bytes: int = 1 * 2**20  # bytes of entry data per replication message; well under max_frame
    max_inflight: int = 8  # replication messages in flight per follower before waiting for acks
    options: Any = None  # the plugin's own options class, built from [consensus.options]

    def check(self, engine: str) -> None:
        """The rules every engine relies on; `engine` names it in the message.

        Raises:
            ValueError: a rule is broken (the host validates configs first, so this is a bug in the caller).
        """
        where = f"{engine} settings for {self.node_id!r}"
        if not self.node_id:
            raise ValueError(f"{engine} settings: node_id is empty")
        if not 0 < self.heartbeat < self.election_min < self.election_max:
            raise ValueError(f"{where}: need 0 < heartbeat ({self.heartbeat}) < election_min "
                             f"({self.election_min}) < election_max ({self.election_max})")
        for name in ("max_batch_entries", "max_batch_bytes", "max_inflight"):
            if getattr(self, name) < 1:
                raise ValueError(f"{where}: {name} is {getattr(self, name)}, below 1")


@attrs.frozen
class Outbound:
    """A message for one peer."""

    dst: str
    message: Any  # a registered wire message


@attrs.frozen
class ReadReady:
    """The read barrier `request` may be answered once `index` is applied."""

    request: int
    index: int


@attrs.frozen
class SnapshotToInstall:
    """A snapshot received from a leader: replace the state machine with it."""

    meta: SnapshotMeta
    data: bytes


@attrs.frozen
class RoleChanged:
    role: str  # "leader", "follower", "candidate", "learner", … as the engine names them
    term: int


@attrs.frozen
class LeaderChanged:
    leader: str | None
    term: int


@attrs.frozen
class Ready:
    """What the driver must do now, in the order the fields are listed."""

    persist: tuple[LogOp, ...] = ()  # durable (fsynced) before any of `send` leaves
    send_early: tuple[Outbound, ...] = ()  # may leave before `persist` is durable (after earlier Readys' is)
    send: tuple[Outbound, ...] = ()
    install: SnapshotToInstall | None = None  # before `committed`, which continue after it
    committed: tuple[Entry, ...] = ()  # in index order, each exactly once; skip non-COMMAND kinds
    reads: tuple[ReadReady, ...] = ()  # answer each once its index is applied
    events: tuple[RoleChanged | LeaderChanged, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.persist or self.send_early or self.send or self.install or self.committed or self.reads
                    or self.events)


@attrs.frozen(kw_only=True)
class EngineStatus:
    """What `keel status` shows of an engine."""

    role: str
    leader: str | None
    term: int  # term, or ballot round
    commit_index: int
    last_index: int
    voters: tuple[str, ...]
    learners: tuple[str, ...] = ()


@attrs.frozen
class MembershipChange:
    """Add a learner, promote a caught-up learner to voter, or remove a member; one at a time."""

    action: str  # "add_learner", "promote", "remove"
    node: str


class Engine(Protocol):
    """A sans-I/O consensus engine."""

    def tick(self, now: float) -> None:
        """Time passed; `now` is the driver's monotonic clock in seconds."""

    def receive(self, src: str, message: Any) -> None:
        """A peer's message arrived (already decoded and type-checked)."""

    def propose(self, command: bytes) -> int:
        """Ask to replicate `command`; returns the index it will have if committed.

        Raises:
            NotLeader: this node does not lead; the error carries a hint.
        """

    def read_barrier(self, request: int) -> None:
        """Ask when a linearizable read may be served; answered in `Ready.reads`.

        Raises:
            NotLeader: this node does not lead.
        """

    def change_membership(self, change: MembershipChange) -> int:
        """Start a one-node membership change through the log; returns its index.

        Raises:
            NotLeader: this node does not lead.
            KeelError: another change is still in progress, or the change is invalid.
        """

    def transfer_leadership(self, target: str | None = None) -> None:
        """Hand leadership to `target` (or the most caught-up voter), e.g. before stopping."""

    def snapshot_taken(self, meta: SnapshotMeta, data: bytes) -> None:
        """The driver saved a snapshot of the state machine at `meta.index`.

        The engine may now compact its log below it (a `CompactTo` in a later
        `Ready`) and ships `data` to followers that fell behind the log.
        """

    def poll(self) -> Ready:
        """Everything to do since the last poll (empty when nothing is)."""

    def status(self) -> EngineStatus:
        """Role, leader, term and indexes now."""


class EngineFactory(Protocol):
    def __call__(self, settings: EngineSettings, recovered: Recovered, rng: random.Random) -> Engine: ...

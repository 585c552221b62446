"""A hand-cranked network of Raft engines for unit tests: no simulator, every step visible.

`Net` holds one engine per node, a disk per node (the log operations folded
with `LogState`, as a driver would), and a queue of messages in flight.
Tests move time with `tick`, let messages flow with `settle`, cut links,
crash and restart nodes, and read each node's polled `Ready`s. Persisted
records are durable at once and messages are delivered in order, unless a
test holds or drops them; so a test states exactly the interleaving it
checks.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from keel import wire
from keel.consensus import EngineSettings, Entry, EntryKind, LogState, Ready, Recovered, SnapshotMeta

from keel_consensus_raft import RaftEngine, RaftOptions, create
from keel_consensus_raft.messages import HardState, TimeoutNow

HEARTBEAT = 0.05  # seconds; the host's defaults, spelled out so tests can reason about them
ELECTION_MIN = 0.15
ELECTION_MAX = 0.30
STEP = 0.01  # seconds per tick when a test lets time run


@attrs.define
class Machine:
    """What a driver's state machine saw: committed entries and installed snapshots, in order."""

    applied: list[Entry] = attrs.Factory(list)
    installed: list[SnapshotMeta] = attrs.Factory(list)

    @property
    def index(self) -> int:
        last = [self.installed[-1].index] if self.installed else [0]
        if self.applied:
            last.append(self.applied[-1].index)
        return max(last)

    def commands(self) -> list[bytes]:
        return [e.data for e in self.applied if e.kind is EntryKind.COMMAND]


class Net:
    """Engines wired together by a queue the test controls."""

    def __init__(self, ids: Iterable[str] = ("n1", "n2", "n3"), *, voters: Iterable[str] | None = None,
                 options: RaftOptions | None = None, seed: int = 0, **settings: Any) -> None:
        self.ids = tuple(sorted(ids))
        self.voters = tuple(sorted(voters)) if voters is not None else self.ids
        self.options = options
        self.settings = settings
        self.seed = seed
        self.now = 0.0
        self.disks = {node: LogState() for node in self.ids}
        self.engines: dict[str, RaftEngine | None] = {}
        self.machines = {node: Machine() for node in self.ids}
        self.readies: dict[str, list[Ready]] = {node: [] for node in self.ids}
        self.queue: deque[tuple[str, str, Any]] = deque()
        self.cut: set[tuple[str, str]] = set()
        self.hold = False  # when True, sends stay queued until a test delivers them
        # What the network does to each message: the message (maybe altered), or None to lose it.
        self.rewrite: Callable[[str, str, Any], Any] = lambda src, dst, msg: msg
        self.incarnation = dict.fromkeys(self.ids, 0)
        for node in self.ids:
            self.start(node)

    # --- nodes -------------------------------------------------------------------

    def settings_for(self, node: str) -> EngineSettings:
        return EngineSettings(node_id=node, voters=self.voters, options=self.options, **self.settings)

    def start(self, node: str, recovered: Recovered | None = None) -> RaftEngine:
        self.incarnation[node] += 1
        rng = random.Random(f"{self.seed}/{node}/{self.incarnation[node]}")
        engine = create(self.settings_for(node), recovered or self.disks[node].recovered(), rng)
        self.engines[node] = engine
        self.machines[node] = Machine()
        return engine

    def crash(self, node: str) -> None:
        self.engines[node] = None
        self.queue = deque(item for item in self.queue if item[1] != node)

    def restart(self, node: str) -> RaftEngine:
        return self.start(node)

    def engine(self, node: str) -> RaftEngine:
        engine = self.engines[node]
        assert engine is not None, f"{node} is down"
        return engine

    def live(self) -> list[str]:
        return [node for node in self.ids if self.engines[node] is not None]

    # --- driving ---------------------------------------------------------------------

    def poll(self, node: str) -> Ready:
        """Poll one node and carry its Ready out: persist (durable at once), queue sends, apply."""
        ready = self.engine(node).poll()
        self.readies[node].append(ready)
        for op in ready.persist:
            self.disks[node].apply(op)
        machine = self.machines[node]
        if ready.install is not None:
            machine.installed.append(ready.install.meta)
        machine.applied.extend(ready.committed)
        for out in (*ready.send_early, *ready.send):
            self.queue.append((node, out.dst, out.message))
        return ready

    def deliver_one(self) -> bool:
        if not self.queue:
            return False
        src, dst, message = self.queue.popleft()
        if (src, dst) in self.cut or self.engines.get(dst) is None:
            return True
        message = self.rewrite(src, dst, message)
        if message is None:
            return True
        self.engine(dst).receive(src, message)
        self.poll(dst)
        return True

    def settle(self, limit: int = 100_000) -> None:
        """Poll everyone, then deliver until nothing is in flight."""
        for node in self.live():
            self.poll(node)
        if self.hold:
            return
        for _ in range(limit):
            if not self.deliver_one():
                return
        raise AssertionError("messages kept flowing: the network never settled")

    def tick(self, seconds: float = STEP, nodes: Iterable[str] | None = None) -> None:
        """Advance the clock and tick the given (default: all live) nodes, then settle."""
        self.now += seconds
        for node in nodes if nodes is not None else self.live():
            if self.engines[node] is not None:
                self.engine(node).tick(self.now)
        self.settle()

    def run(self, seconds: float) -> None:
        """Let time run in small steps."""
        for _ in range(round(seconds / STEP)):
            self.tick(STEP)

    def elect(self, node: str) -> None:
        """Make `node` leader in the next term, as a leadership transfer would (thesis §3.10).

        Waiting for `node`'s own timeout would need every other clock held
        back, and a clock held back makes a follower misjudge how recently
        it heard the leader; TimeoutNow starts the election at once instead.
        """
        self.tick(0.0)
        engine = self.engine(node)
        for _ in range(3):  # a candidate that lost to a vote already cast tries again in the next term
            engine.receive("harness", TimeoutNow(term=engine.status().term))
            self.settle()
            if self.role(node) == "leader":
                return
        raise AssertionError(f"{node} did not win: {engine.status()}")

    def load(self, node: str, *, term: int = 0, vote: str | None = None, log: Iterable[tuple[int, int]] = (),
             snapshot: SnapshotMeta | None = None) -> RaftEngine:
        """Restart `node` from a disk holding `term`, `vote` and entries given as (index, term) pairs."""
        entries = [Entry(index, entry_term, EntryKind.COMMAND, f"{index}@{entry_term}".encode()) for index, entry_term in log]
        self.disks[node] = LogState(stable=wire.encode(HardState(term, vote)), snapshot=snapshot, entries=entries)
        return self.restart(node)

    # --- looking -------------------------------------------------------------------

    def role(self, node: str) -> str:
        return self.engine(node).status().role

    def leaders(self) -> list[str]:
        return [node for node in self.live() if self.role(node) == "leader"]

    def sent(self, node: str, kind: type | None = None) -> list[tuple[str, Any]]:
        """(dst, message) pairs `node` sent, of one message type or all."""
        return [(out.dst, out.message) for ready in self.readies[node] for out in (*ready.send_early, *ready.send)
                if kind is None or isinstance(out.message, kind)]

    def persisted(self, node: str) -> list[Any]:
        return [op for ready in self.readies[node] for op in ready.persist]

    def events(self, node: str) -> list[Any]:
        return [event for ready in self.readies[node] for event in ready.events]

    def forget(self) -> None:
        """Clear what was recorded so far, so assertions look only at what follows."""
        for node in self.ids:
            self.readies[node] = []

    def propose(self, node: str, *commands: bytes) -> list[int]:
        return [self.engine(node).propose(command) for command in commands]

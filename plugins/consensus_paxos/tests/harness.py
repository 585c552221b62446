"""Hand-cranked Paxos engines for unit tests: no simulator, every step visible.

Two ways in:
- `lone(...)` builds one engine from a hand-made disk, and `step` feeds it
  one message and polls: for tests that play every peer by hand (crafted
  Promises, stale Accepts) and read one `Ready`.
- `Net` wires engines through a queue the test controls: a disk per node
  (the log operations folded with `LogState`, as a driver would), messages
  delivered in order unless a test holds, cuts, rewrites or picks them.
  Records are durable at once, so a test states exactly the interleaving it
  checks.

Every node has its own clock: `Net.now` plus the node's lead (`ahead`).
`campaign` pushes one node's clock past any failure-detection timeout, so
that node runs phase 1 while the others' clocks, and their view of how
recently they heard a leader, stay where they were. Engines only compare
times of their own clock, so clocks that differ by a constant are fine.
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from keel import wire
from keel.consensus import EngineSettings, Entry, EntryKind, LogState, Ready, Recovered, SaveStable, SnapshotMeta

from keel_consensus_paxos import PaxosEngine, PaxosOptions, create
from keel_consensus_paxos.messages import Stable

HEARTBEAT = 0.05  # seconds; the host's defaults, spelled out so tests can reason about them
ELECTION_MIN = 0.15
ELECTION_MAX = 0.30
STEP = 0.01  # seconds per tick when a test lets time run
# seconds past which any voter's failure detector has fired: a timeout is drawn from
# [min, max + 3 × (max - min)) at most (`PaxosState.election_timeout` after failed attempts).
CAMPAIGN = 4 * ELECTION_MAX
VOTERS = ("n1", "n2", "n3")
PLAIN = PaxosOptions(sticky=False)  # phase 1 without the probe step


def command(index: int, ballot: int, data: bytes | str | None = None) -> Entry:
    """A COMMAND entry at `index` accepted under `ballot` (data defaults to `index@ballot`)."""
    data = f"{index}@{ballot}" if data is None else data
    return Entry(index, ballot, EntryKind.COMMAND, data.encode() if isinstance(data, str) else data)


def noop(index: int, ballot: int) -> Entry:
    return Entry(index, ballot, EntryKind.NOOP)


def stable(promised: int) -> SaveStable:
    """The record that persists `promised` as the acceptor's promise."""
    return SaveStable(wire.encode(Stable(promised=promised)))


def lone(node: str = "n2", voters: tuple[str, ...] = VOTERS, *, promised: int = 0, entries: Iterable[Entry] = (),
         snapshot: SnapshotMeta | None = None, options: PaxosOptions | None = None, seed: int = 0) -> PaxosEngine:
    """One engine recovered from a disk holding `promised` and `entries`; its boot `Ready` is drained."""
    recovered = Recovered(stable=stable(promised).state if promised else b"", snapshot=snapshot, entries=tuple(entries))
    engine = create(EngineSettings(node_id=node, voters=voters, options=options), recovered, random.Random(seed))
    engine.poll()
    return engine


def step(engine: PaxosEngine, src: str, message: Any) -> Ready:
    """Deliver one message and poll."""
    engine.receive(src, message)
    return engine.poll()


def campaign(engine: PaxosEngine) -> Ready:
    """Make a lone engine's failure detector fire, and poll what phase 1 sends."""
    engine.tick(0.0)
    engine.tick(CAMPAIGN)
    return engine.poll()


def messages(ready: Ready, kind: type | None = None, *, early: bool | None = None) -> list[tuple[str, Any]]:
    """(dst, message) pairs of a Ready: `send`, `send_early` or (None) both, of one type or all."""
    outs = {True: ready.send_early, False: ready.send, None: (*ready.send_early, *ready.send)}[early]
    return [(out.dst, out.message) for out in outs if kind is None or isinstance(out.message, kind)]


@attrs.define
class Machine:
    """What a driver's state machine saw: committed entries and installed snapshots, in order."""

    applied: list[Entry] = attrs.Factory(list)
    installed: list[SnapshotMeta] = attrs.Factory(list)
    state: list[str] = attrs.Factory(list)  # every command applied (or restored), in order

    @property
    def index(self) -> int:
        last = [self.installed[-1].index] if self.installed else [0]
        return max(last + [e.index for e in self.applied[-1:]])

    def commands(self) -> list[bytes]:
        return [e.data for e in self.applied if e.kind is EntryKind.COMMAND]

    def snapshot(self) -> bytes:
        return json.dumps(self.state).encode()


class Net:
    """Paxos engines wired together by a queue the test controls."""

    def __init__(self, ids: Iterable[str] = VOTERS, *, voters: Iterable[str] | None = None,
                 options: PaxosOptions | None = None, seed: int = 0, **settings: Any) -> None:
        self.ids = tuple(sorted(ids))
        self.voters = tuple(sorted(voters)) if voters is not None else self.ids
        self.options, self.settings, self.seed = options, settings, seed
        self.now = 0.0
        self.ahead = dict.fromkeys(self.ids, 0.0)  # seconds each node's clock runs ahead of `now`
        self.disks = {node: LogState() for node in self.ids}
        self.snapshots: dict[str, tuple[SnapshotMeta, bytes]] = {}  # node -> the snapshot its driver stored
        self.engines: dict[str, PaxosEngine | None] = {}
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

    def start(self, node: str) -> PaxosEngine:
        """Boot `node` from its disk (and its stored snapshot), as a driver would after a restart."""
        self.incarnation[node] += 1
        rng = random.Random(f"{self.seed}/{node}/{self.incarnation[node]}")
        settings = EngineSettings(node_id=node, voters=self.voters, options=self.options, **self.settings)
        disk = self.disks[node]
        engine = create(settings, disk.recovered(), rng)
        self.engines[node] = engine
        self.machines[node] = machine = Machine()
        if disk.snapshot is not None:
            meta, data = self.snapshots[node]
            machine.installed.append(meta)
            machine.state = json.loads(data)
            engine.snapshot_taken(disk.snapshot, data)
        return engine

    def crash(self, node: str) -> None:
        self.engines[node] = None
        self.queue = deque(item for item in self.queue if item[1] != node)

    def load(self, node: str, *, promised: int = 0, entries: Iterable[Entry] = ()) -> PaxosEngine:
        """Restart `node` from a disk holding `promised` and `entries`."""
        state = stable(promised).state if promised else b""
        self.disks[node] = LogState(stable=state, entries=list(entries))
        return self.start(node)

    def engine(self, node: str) -> PaxosEngine:
        engine = self.engines[node]
        assert engine is not None, f"{node} is down"
        return engine

    def live(self) -> list[str]:
        return [node for node in self.ids if self.engines[node] is not None]

    def clock(self, node: str) -> float:
        return self.now + self.ahead[node]

    # --- driving ---------------------------------------------------------------------

    def poll(self, node: str) -> Ready:
        """Poll one node and carry its Ready out: persist (durable at once), queue sends, install, apply."""
        ready = self.engine(node).poll()
        self.readies[node].append(ready)
        for op in ready.persist:
            self.disks[node].apply(op)
        machine = self.machines[node]
        if ready.install is not None:
            machine.installed.append(ready.install.meta)
            machine.state = json.loads(ready.install.data)
            self.snapshots[node] = (ready.install.meta, ready.install.data)
        for entry in ready.committed:
            assert entry.index == machine.index + 1, f"{node} applied {entry.index} after {machine.index}"
            machine.applied.append(entry)
            if entry.kind is EntryKind.COMMAND:
                machine.state.append(entry.data.decode())
        for out in (*ready.send_early, *ready.send):
            self.queue.append((node, out.dst, out.message))
        return ready

    def _deliver(self, src: str, dst: str, message: Any) -> None:
        if (src, dst) in self.cut or self.engines.get(dst) is None:
            return
        message = self.rewrite(src, dst, message)
        if message is not None:
            self.engine(dst).receive(src, message)
            self.poll(dst)

    def settle(self, limit: int = 100_000) -> None:
        """Poll everyone, then deliver until nothing is in flight (unless held)."""
        for node in self.live():
            self.poll(node)
        if self.hold:
            return
        for _ in range(limit):
            if not self.queue:
                return
            self._deliver(*self.queue.popleft())
        raise AssertionError("messages kept flowing: the network never settled")

    def deliver(self, where: Callable[[str, str, Any], bool]) -> int:
        """Deliver, in order, the queued messages `where(src, dst, message)` picks (their answers stay queued)."""
        picked = [item for item in self.queue if where(*item)]
        self.queue = deque(item for item in self.queue if not where(*item))
        for item in picked:
            self._deliver(*item)
        return len(picked)

    def tick(self, seconds: float = STEP, nodes: Iterable[str] | None = None) -> None:
        """Advance the clock and tick the given (default: all live) nodes, then settle."""
        self.now += seconds
        for node in nodes if nodes is not None else self.live():
            if self.engines[node] is not None:
                self.engine(node).tick(self.clock(node))
        self.settle()

    def run(self, seconds: float) -> None:
        """Let time run in small steps."""
        for _ in range(round(seconds / STEP)):
            self.tick(STEP)

    def campaign(self, node: str) -> None:
        """Fire `node`'s failure detector alone: its clock jumps past any timeout, the others' stay."""
        self.tick(0.0)  # a node's first tick only starts its clock
        self.ahead[node] += CAMPAIGN
        self.tick(0.0, [node])

    def elect(self, node: str) -> None:
        """Make `node` lead a cluster that has no live leader, through its own phase 1."""
        self.campaign(node)
        assert self.role(node) == "leader", f"{node} did not win: {self.engine(node).status()}"

    def snapshot(self, node: str) -> SnapshotMeta:
        """The driver snapshots `node`'s state machine where it stands and tells the engine."""
        machine = self.machines[node]
        meta, data = SnapshotMeta(index=machine.index, term=0), machine.snapshot()
        self.snapshots[node] = (meta, data)
        self.engine(node).snapshot_taken(meta, data)
        self.settle()
        return meta

    # --- looking -------------------------------------------------------------------

    def role(self, node: str) -> str:
        return self.engine(node).status().role

    def ballot(self, node: str) -> int:
        return self.engine(node).status().term

    def leaders(self) -> list[str]:
        return [node for node in self.live() if self.role(node) == "leader"]

    def sent(self, node: str, kind: type | None = None) -> list[tuple[str, Any]]:
        """(dst, message) pairs `node` sent since the last `forget`, of one message type or all."""
        return [pair for ready in self.readies[node] for pair in messages(ready, kind)]

    def persisted(self, node: str, kind: type | None = None) -> list[Any]:
        return [op for ready in self.readies[node] for op in ready.persist if kind is None or isinstance(op, kind)]

    def events(self, node: str) -> list[Any]:
        return [event for ready in self.readies[node] for event in ready.events]

    def reads(self, node: str) -> list[Any]:
        return [read for ready in self.readies[node] for read in ready.reads]

    def forget(self) -> None:
        """Clear what was recorded so far, so assertions look only at what follows."""
        for node in self.ids:
            self.readies[node] = []

    def propose(self, node: str, *commands: bytes) -> list[int]:
        return [self.engine(node).propose(c) for c in commands]

    def slots(self, node: str) -> list[tuple[int, int, bytes]]:
        """(slot, ballot, data) of every entry `node`'s log keeps."""
        log = self.engine(node).log
        return [(e.index, e.term, e.data) for e in log.between(log.first_index, log.last_index)]

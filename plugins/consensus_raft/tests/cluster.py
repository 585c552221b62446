"""Raft clusters in `keel.sim`: invariant checkers and a client that keeps proposing and reading.

`Watch` checks, after every simulation event:
- Election Safety: at most one leader per term (from RoleChanged events);
- Leader Completeness: a new leader's log holds every entry applied anywhere
  (above its snapshot);
- State Machine Safety: every node applies the same command at each index
  and reaches the same state-machine digest there (Applied/Installed);
- Log Matching: two logs holding an entry with the same index and term hold
  the same entry, and agree on the term of the entry before it (checked
  incrementally: each (index, term) is registered once with what it must be);
- ReadIndex: a read is answered at an index no lower than anything applied
  anywhere before the read was asked for (a stale leader would fail this).

`Client` proposes commands and asks for reads through whichever node
claims to lead, the way a retrying client would, and records what must
eventually commit.
"""

from __future__ import annotations

import random
from typing import Any

from keel.consensus import Applied, Installed, ReadServed, RoleChanged
from keel.errors import KeelError
from keel.sim import At, Crash, Restart, Simulation

from keel_consensus_raft import RaftEngine


class Watch:
    """Raft's safety properties, checked as the simulation runs."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.leaders: dict[int, str] = {}  # term -> the node that led it
        self.applied: dict[int, tuple[int, bytes, bytes]] = {}  # index -> (term, command, digest)
        self.digests: dict[int, bytes] = {}  # index -> state-machine digest there
        self.entries: dict[tuple[int, int], tuple[int | None, Any, bytes]] = {}  # (index, term) -> (prev term, kind, data)
        self.scanned: dict[str, tuple[int, int, int]] = {}  # node -> (engine id, truncations, last index checked)
        self.read_floor: dict[int, int] = {}  # read request -> highest index applied anywhere when it was asked
        self.max_applied = 0
        self.installs = 0
        self.reads_served = 0
        sim.observe(self.on_event)
        sim.check(self.check_logs)

    def on_event(self, time: float, node: str, event: Any) -> None:
        if isinstance(event, RoleChanged) and event.role == "leader":
            other = self.leaders.setdefault(event.term, node)
            assert other == node, f"two leaders in term {event.term}: {other} and {node}"
            self._complete(node)
        elif isinstance(event, Applied):
            seen = self.applied.setdefault(event.index, (event.term, event.command, event.digest))
            assert seen == (event.term, event.command, event.digest), \
                f"{node} applied {event!r} at index {event.index}, another node applied {seen}"
            self._digest(node, event.index, event.digest)
            self.max_applied = max(self.max_applied, event.index)
        elif isinstance(event, Installed):
            self.installs += 1
            self._digest(node, event.index, event.digest)
        elif isinstance(event, ReadServed):
            self.reads_served += 1
            floor = self.read_floor.pop(event.request, 0)
            assert event.index >= floor, f"{node} served read {event.request} at {event.index}, but {floor} was applied before it was asked"

    def _digest(self, node: str, index: int, digest: bytes) -> None:
        seen = self.digests.setdefault(index, digest)
        assert seen == digest, f"{node}'s state machine differs from another node's at index {index}"

    def _complete(self, node: str) -> None:
        log = self.engine(node).log
        for index, (term, _, _) in sorted(self.applied.items()):
            if index > log.snapshot.index:
                assert log.term_at(index) == term, f"new leader {node} lacks committed entry {index} (term {term})"

    def engine(self, node: str) -> RaftEngine:
        return self.sim.node(node).engine

    def check_logs(self, sim: Simulation) -> None:
        for node in sim.node_ids:
            host = sim.node(node)
            if host is None:
                continue
            log = host.engine.log
            last = log.last_index
            now = (id(host.engine), log.truncations, last)
            before = self.scanned.get(node)
            if before == now:
                continue
            # A new incarnation or a rewritten log is checked all again.
            upto = before[2] if before is not None and before[:2] == now[:2] else 0
            for index in range(max(upto, log.snapshot.index) + 1, last + 1):
                entry = log.entry(index)
                fact = (log.term_at(index - 1), entry.kind, entry.data)
                seen = self.entries.setdefault((index, entry.term), fact)
                assert seen == fact, f"log matching: {node} has ({index}, term {entry.term}) as {fact}, another log as {seen}"
            self.scanned[node] = now

    def leader(self) -> str | None:
        """The live node that claims leadership in the highest term, if any."""
        best = None
        for node in self.sim.node_ids:
            host = self.sim.node(node)
            if host is not None:
                status = host.engine.status()
                if status.role == "leader" and (best is None or status.term > best[0]):
                    best = (status.term, node)
        return best[1] if best else None


class Client:
    """Proposes and reads through the current leader; remembers what it is still waiting for."""

    def __init__(self, sim: Simulation, watch: Watch, rng: random.Random) -> None:
        self.sim, self.watch, self.rng = sim, watch, rng
        self.sent = 0
        self.pending: set[bytes] = set()  # commands proposed for the liveness check, not yet applied
        self.next_read = 0
        sim.observe(self._applied)

    def _applied(self, time: float, node: str, event: Any) -> None:
        if isinstance(event, Applied):
            self.pending.discard(event.command)

    def _leader(self) -> Any:
        node = self.watch.leader()
        return None if node is None else self.sim.node(node)

    def work(self, sim: Simulation) -> None:
        """One client step: a couple of writes and a read, at whichever node leads."""
        host = self._leader()
        if host is None:
            return
        for _ in range(self.rng.randint(1, 3)):
            self.sent += 1
            try:
                host.propose(f"k{self.sent % 7}=v{self.sent}".encode())
            except KeelError:
                return
        self.next_read += 1
        self.watch.read_floor[self.next_read] = self.watch.max_applied
        try:
            host.read(self.next_read, f"k{self.sent % 7}".encode())
        except KeelError:
            self.watch.read_floor.pop(self.next_read)

    def must_commit(self, commands: list[bytes]) -> None:
        self.pending.update(commands)

    def retry(self, sim: Simulation) -> None:
        """Propose every command still pending (again), as a client whose requests timed out would."""
        host = self._leader()
        if host is None:
            return
        for command in sorted(self.pending):
            try:
                host.propose(command)
            except KeelError:
                return


def every(sim: Simulation, start: float, end: float, step: float, fn: Any) -> None:
    """Schedule `fn(sim)` every `step` seconds of virtual time in [start, end)."""
    count = int((end - start) / step)
    for i in range(count):
        sim.at(start + i * step, fn)


class Hunter:
    """Crashes whichever node leads at the moment, and restarts it a little later.

    Random schedules rarely hit the leader; this does, right after clients
    gave it entries it may not have replicated, which is where a leader's
    uncommitted suffix must be overwritten and nothing committed lost.
    """

    def __init__(self, sim: Simulation, watch: Watch, rng: random.Random, *, down: tuple[float, float]) -> None:
        self.sim, self.watch, self.rng, self.down = sim, watch, rng, down
        self.kills = 0

    def strike(self, sim: Simulation) -> None:
        node = self.watch.leader()
        if node is None:
            return
        self.kills += 1
        sim.schedule([At(sim.now, Crash(node)), At(sim.now + self.rng.uniform(*self.down), Restart(node))])

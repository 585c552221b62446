"""Paxos clusters in `keel.sim`: safety checks after every event, and a client that keeps proposing and reading.

`Watch` checks, as the simulation runs:
- one leader per ballot (ballots are unique to their proposer, so two
  leaders with one ballot means the numbering broke);
- State Machine Safety: every node applies the same command at each slot
  and reaches the same digest there (Applied/Installed events);
- chosen values are never lost: a new leader's log holds, at every slot,
  the command applied there anywhere under a lower ballot ("Paxos Made
  Simple" §2.2: every higher-numbered proposal carries the chosen value);
- read barriers: a read is answered at a slot no lower than anything
  applied anywhere before it was asked (a deposed leader would fail this).

`Client` proposes and reads through whichever node claims to lead, as a
retrying client would, and remembers what must still commit.
"""

from __future__ import annotations

import random
from typing import Any

from keel.consensus import Applied, EntryKind, Installed, ReadServed, RoleChanged
from keel.errors import KeelError
from keel.sim import At, Crash, Restart, Simulation


class Watch:
    """Paxos's safety properties, checked on every event a node reports."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.leaders: dict[int, str] = {}  # ballot -> the node that led with it
        self.applied: dict[int, tuple[int, bytes, bytes]] = {}  # slot -> (ballot, command, digest)
        self.digests: dict[int, bytes] = {}  # slot -> state-machine digest there
        self.read_floor: dict[int, int] = {}  # read request -> highest slot applied anywhere when it was asked
        self.max_applied = 0
        self.installs = 0
        self.reads_served = 0
        sim.observe(self.on_event)

    def on_event(self, time: float, node: str, event: Any) -> None:
        if isinstance(event, RoleChanged) and event.role == "leader":
            other = self.leaders.setdefault(event.term, node)
            assert other == node, f"two leaders with ballot {event.term}: {other} and {node}"
            self._complete(node, event.term)
        elif isinstance(event, Applied):
            seen = self.applied.setdefault(event.index, (event.term, event.command, event.digest))
            assert seen[1:] == (event.command, event.digest), \
                f"{node} applied {event.command!r} at slot {event.index}, another node applied {seen[1]!r}"
            self._digest(node, event.index, event.digest)
            self.max_applied = max(self.max_applied, event.index)
        elif isinstance(event, Installed):
            self.installs += 1
            self._digest(node, event.index, event.digest)
        elif isinstance(event, ReadServed):
            self.reads_served += 1
            floor = self.read_floor.pop(event.request, 0)
            assert event.index >= floor, \
                f"{node} served read {event.request} at {event.index}, but {floor} was applied before"

    def _digest(self, node: str, index: int, digest: bytes) -> None:
        seen = self.digests.setdefault(index, digest)
        assert seen == digest, f"{node}'s state machine differs from another node's at slot {index}"

    def _complete(self, node: str, ballot: int) -> None:
        log = self.sim.node(node).engine.log
        for index, (chosen_in, command, _) in sorted(self.applied.items()):
            if index <= log.snapshot.index or chosen_in >= ballot:
                continue  # covered by its snapshot, or a leader already outbid when the value was chosen
            assert index <= log.last_index, f"new leader {node} (ballot {ballot}) lacks chosen slot {index}"
            entry = log.entry(index)
            assert (entry.kind, entry.data) == (EntryKind.COMMAND, command), \
                f"new leader {node} (ballot {ballot}) holds {entry} at slot {index}, where {command!r} was chosen"

    def leader(self) -> str | None:
        """The live node that claims leadership with the highest ballot, if any."""
        claims = []
        for node in self.sim.node_ids:
            host = self.sim.node(node)
            if host is not None and host.engine.status().role == "leader":
                claims.append((host.engine.status().term, node))
        return max(claims)[1] if claims else None


class Client:
    """Proposes and reads through the current leader; remembers what it still waits for."""

    def __init__(self, sim: Simulation, watch: Watch, rng: random.Random) -> None:
        self.sim, self.watch, self.rng = sim, watch, rng
        self.sent = 0
        self.reads = 0
        self.pending: set[bytes] = set()  # commands that must commit once faults end
        sim.observe(self._applied)

    def _applied(self, time: float, node: str, event: Any) -> None:
        if isinstance(event, Applied):
            self.pending.discard(event.command)

    def _host(self) -> Any:
        node = self.watch.leader()
        return None if node is None else self.sim.node(node)

    def work(self, sim: Simulation) -> None:
        """One client step: a few writes and a read, at whichever node leads."""
        host = self._host()
        if host is None:
            return
        try:
            for _ in range(self.rng.randint(1, 3)):
                self.sent += 1
                host.propose(f"k{self.sent % 7}=v{self.sent}".encode())
            self.reads += 1
            self.watch.read_floor[self.reads] = self.watch.max_applied
            host.read(self.reads, f"k{self.sent % 7}".encode())
        except KeelError:
            self.watch.read_floor.pop(self.reads, None)

    def must_commit(self, commands: list[bytes]) -> None:
        self.pending.update(commands)

    def retry(self, sim: Simulation) -> None:
        """Propose every pending command again, as a client whose requests timed out would."""
        host = self._host()
        if host is None:
            return
        for command in sorted(self.pending):
            try:
                host.propose(command)
            except KeelError:
                return


def every(sim: Simulation, start: float, end: float, step: float, fn: Any) -> None:
    """Schedule `fn(sim)` every `step` seconds of virtual time in [start, end)."""
    for i in range(int((end - start) / step)):
        sim.at(start + i * step, fn)


def strike_leader(rng: random.Random, watch: Watch, down: tuple[float, float]) -> Any:
    """A callback that crashes whichever node leads and restarts it a little later.

    Random schedules rarely hit the leader; this does, right after clients
    gave it slots it may not have had accepted, which a new leader's phase 1
    must recover or fill.
    """

    def strike(sim: Simulation) -> None:
        node = watch.leader()
        if node is not None:
            sim.schedule([At(sim.now, Crash(node)), At(sim.now + rng.uniform(*down), Restart(node))])

    return strike

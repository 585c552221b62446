"""A heartbeat cluster to watch the simulator work: `python -m keel.sim --seed N`.

Each node numbers its heartbeats and broadcasts one every `HEARTBEAT_S` of
its own clock. The number is persisted before the heartbeat leaves, so after
a crash the node resumes above every number a peer may have seen; the demo's
checker fails the run if a node ever sends one number twice. Nodes report
`Suspected`/`Trusted` events as peers fall silent and come back, which is
what a failure detector would feed a consensus engine.
"""

from __future__ import annotations

import functools
import random
from collections import Counter
from typing import Any

import attrs

from keel import wire
from keel.sim.config import SimConfig
from keel.sim.loop import Simulation
from keel.sim.node import Output
from keel.sim.schedules import SCHEDULES
from keel.sim.trace import Kind

__all__ = ["DemoRun", "HeartbeatNode", "run_demo"]

HEARTBEAT_S = 0.05  # seconds of local time between heartbeats
SUSPECT_AFTER_S = 0.3  # seconds of silence before a peer is suspected: six missed heartbeats


@wire.message("keel.sim.heartbeat")
@attrs.frozen
class Heartbeat:
    """`sender` is alive and has sent `beat` heartbeats."""

    sender: str
    beat: int


@wire.message("keel.sim.beat")
@attrs.frozen
class Beat:
    """Durable record: heartbeat numbers up to `beat` may have been sent."""

    beat: int


@attrs.frozen
class Suspected:
    """Event: `peer` has been silent for longer than `SUSPECT_AFTER_S`."""

    peer: str


@attrs.frozen
class Trusted:
    """Event: a suspected `peer` was heard from again."""

    peer: str


class HeartbeatNode:
    """Sends numbered heartbeats and suspects silent peers."""

    def __init__(self, node_id: str, durable: tuple[Any, ...], rng: random.Random, *, peers: tuple[str, ...]) -> None:
        self.node_id = node_id
        self.peers = tuple(sorted(p for p in peers if p != node_id))
        self.beat = max((r.beat for r in durable), default=0)
        self.now = float("-inf")  # local time of the latest tick
        self.last_beat: float | None = None  # local time of the last heartbeat sent
        self.heard: dict[str, float] = {}  # peer -> local time last heard
        self.suspected: set[str] = set()
        self._persist: list[Beat] = []
        self._send: list[tuple[str, Heartbeat]] = []
        self._events: list[Suspected | Trusted] = []

    def tick(self, now: float) -> None:
        self.now = now
        if self.last_beat is None or now - self.last_beat >= HEARTBEAT_S:
            self.last_beat = now
            self.beat += 1
            self._persist.append(Beat(self.beat))
            self._send.extend((peer, Heartbeat(self.node_id, self.beat)) for peer in self.peers)
        for peer in self.peers:
            heard = self.heard.setdefault(peer, now)
            if peer not in self.suspected and now - heard > SUSPECT_AFTER_S:
                self.suspected.add(peer)
                self._events.append(Suspected(peer))

    def receive(self, src: str, message: Any) -> None:
        self.heard[src] = self.now
        if src in self.suspected:
            self.suspected.discard(src)
            self._events.append(Trusted(src))

    def poll(self) -> Output:
        out = Output(persist=self._persist, send=self._send, events=self._events)
        self._persist, self._send, self._events = [], [], []
        return out


@attrs.frozen
class DemoRun:
    """What one demo run did."""

    seed: int
    schedule: str  # the fault schedule, one fault a line
    counts: tuple[tuple[str, int], ...]  # trace record kind -> how many, sorted by kind
    trace_hash: str


def _beats_never_reused(sim: Simulation, sent: set[tuple[str, str, int]], cursor: list[int]) -> None:
    for record in sim.trace.since(cursor[0]):
        if record.kind is Kind.SEND:
            key = (record.node, record.peer, record.data.beat)
            assert key not in sent, f"{record.node} sent heartbeat {record.data.beat} to {record.peer} twice"
            sent.add(key)
    cursor[0] = len(sim.trace)


def run_demo(seed: int, *, nodes: int = 3, duration: float = 10.0, schedule: str = "random") -> DemoRun:
    """Run the heartbeat cluster under a named fault schedule and summarise the trace.

    Raises:
        ValueError: an unknown schedule name or fewer than one node.
        InvariantViolation: a node reused a heartbeat number (a simulator bug).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule {schedule!r} is unknown; known: {sorted(SCHEDULES)}")
    if nodes < 1:
        raise ValueError(f"nodes: {nodes} is below 1")
    ids = tuple(f"n{i}" for i in range(1, nodes + 1))
    faults = SCHEDULES[schedule](random.Random(seed), ids, duration)
    factory = functools.partial(HeartbeatNode, peers=ids)
    sim = Simulation(seed, dict.fromkeys(ids, factory), config=SimConfig(wire_only=True), faults=faults)
    sim.check(functools.partial(_beats_never_reused, sent=set(), cursor=[0]))
    sim.run(duration + SUSPECT_AFTER_S)
    counts = Counter(record.kind.value for record in sim.trace)
    return DemoRun(seed=seed, schedule=faults.describe(), counts=tuple(sorted(counts.items())),
                   trace_hash=sim.trace_hash())

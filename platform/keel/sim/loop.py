"""The discrete-event loop: a virtual clock, one seeded RNG, and a queue of what happens next.

Theory of operation. The queue holds (virtual time, sequence number, action);
the sequence number breaks ties in the order things were scheduled, so the
run is a pure function of the seed, the node factories, the config and the
fault schedule. Actions are node ticks, message arrivals, fsync
completions, faults and test callbacks. After each one the loop polls the
node it touched, carries out its output (see `keel.sim.node`), and runs every
registered checker.

With `SimConfig.poll_lag`, a message's arrival does not poll at once: the
node's next poll comes after a drawn lag, and every message arriving
meanwhile is received before it (as `keel.core.runtime` batches inputs).

Rules the loop keeps:
- All randomness comes from `rng`, a `random.Random(seed)`; each node
  incarnation gets its own `random.Random` seeded from (seed, node id,
  incarnation), so a node's stream does not shift when the network draws
  more or fewer numbers.
- Node ids are visited in sorted order wherever several nodes are touched at
  once, so no set or dict order reaches the trace.
- Sends leave a node only when every record it wrote before them is durable.
- Each start of a node is a new incarnation: queued ticks and fsync
  completions of a crashed incarnation are ignored when they come up.
  Messages already in flight from the node still arrive; messages arriving
  while it is down are dropped; messages arriving after it restarted are
  delivered (stale ones included, as a real network may).
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from keel.sim.clock import NodeClock
from keel.sim.config import SimConfig
from keel.sim.disk import Disk
from keel.sim.faults import At, Crash, FaultSchedule, Restart, Skew
from keel.sim.network import Network
from keel.sim.node import Node, NodeFactory, Polled
from keel.sim.payload import Payload
from keel.sim.trace import Kind, Record, Trace

__all__ = ["InvariantViolation", "Simulation"]

TRACE_CONTEXT = 12  # trace records quoted in a failure message; enough to see the lead-up

Checker = Callable[["Simulation"], None]  # raises AssertionError when an invariant is broken
Callback = Callable[["Simulation"], None]  # pokes nodes at a scheduled virtual time
Observer = Callable[[float, str, Any], None]


class InvariantViolation(AssertionError):
    """A checker found a broken invariant; the message names the seed and virtual time."""

    def __init__(self, seed: int, time: float, detail: str, context: str) -> None:
        self.seed = seed
        self.time = time
        super().__init__(f"simulation seed {seed} at t={time:.6f}s: {detail}\nlast trace records:\n{context}")


@attrs.frozen
class _Tick:
    node: str
    incarnation: int


@attrs.frozen
class _Arrive:
    src: str
    dst: str
    payload: Payload


@attrs.frozen
class _Synced:
    node: str
    incarnation: int
    upto: int  # records the fsync covers


@attrs.frozen
class _PollDue:
    node: str
    incarnation: int


@attrs.frozen
class _Apply:
    fault: Any


@attrs.frozen
class _Call:
    fn: Callback


@attrs.define
class _Host:
    """The simulator's side of one node: what outlives the node object."""

    factory: NodeFactory
    disk: Disk = attrs.Factory(Disk)
    clock: NodeClock = attrs.Factory(NodeClock)
    node: Node | None = None  # None while crashed
    incarnation: int = 0
    held: deque[tuple[int, tuple[tuple[str, Any], ...]]] = attrs.Factory(deque)  # (records needed durable, sends)
    poll_due: bool = False  # a lagging poll is queued (SimConfig.poll_lag)


class Simulation:
    """Drives sans-I/O nodes over a virtual network with faults.

    Args:
        seed: the one seed everything random derives from.
        nodes: node id -> factory; servers and client actors alike.
        config: the baseline network, disk and tick interval.
        faults: timed faults to apply (more can be added with `schedule`).
    """

    def __init__(self, seed: int, nodes: Mapping[str, NodeFactory], *, config: SimConfig | None = None,
                 faults: FaultSchedule | Iterable[At] = ()) -> None:
        if not nodes:
            raise ValueError("a simulation needs at least one node")
        self.seed = seed
        self.rng = random.Random(seed)
        self.config = config if config is not None else SimConfig()
        self.now = 0.0  # virtual seconds
        self.trace = Trace()
        self._network = Network(self.config)
        self._hosts = {node_id: _Host(factory) for node_id, factory in sorted(nodes.items())}
        self._queue: list[tuple[float, int, Any]] = []
        self._sequence = 0
        self._checkers: list[Checker] = []
        self._observers: list[Observer] = []
        for node_id in self._hosts:
            self._start(node_id)
        self.schedule(faults)

    # --- what tests and checkers use -------------------------------------

    @property
    def node_ids(self) -> tuple[str, ...]:
        """Every node id, sorted."""
        return tuple(self._hosts)

    def node(self, node_id: str) -> Node | None:
        """The live node object, or None while it is crashed."""
        return self._host(node_id).node

    def disk(self, node_id: str) -> Disk:
        """The node's simulated disk (read it; do not write)."""
        return self._host(node_id).disk

    def local_time(self, node_id: str) -> float:
        """What the node's clock reads now (looking does not move it)."""
        return self._host(node_id).clock.peek(self.now)

    def schedule(self, faults: FaultSchedule | Iterable[At]) -> None:
        """Queue timed faults.

        Raises:
            ValueError: a fault is in the past or names a node this simulation lacks.
        """
        events = faults.events if isinstance(faults, FaultSchedule) else FaultSchedule(tuple(faults)).events
        unknown = sorted(FaultSchedule(events).nodes() - set(self._hosts))
        if unknown:
            raise ValueError(f"fault schedule names unknown node {unknown[0]!r}; nodes are {list(self._hosts)}")
        for event in events:
            self._not_past(event.time)
        for event in events:
            self._push(event.time, _Apply(event.fault))

    def at(self, time: float, fn: Callback) -> None:
        """Call `fn(simulation)` at virtual time `time`, then poll every live node.

        This is how a test pokes nodes from outside (`sim.node("n1").propose(...)`).
        """
        self._push(self._not_past(time), _Call(fn))

    def check(self, fn: Checker) -> None:
        """Run `fn(simulation)` after every event; an AssertionError stops the run as an `InvariantViolation`."""
        self._checkers.append(fn)

    def observe(self, fn: Observer) -> None:
        """Call `fn(time, node_id, event)` for every event a node reports, in order."""
        self._observers.append(fn)

    def run(self, until: float) -> None:
        """Process every queued action up to virtual time `until`, then set `now` to it.

        Raises:
            InvariantViolation: a checker or observer raised AssertionError.
            Exception: whatever a node raised, with a note naming the seed and time.
        """
        try:
            while self._queue and self._queue[0][0] <= until:
                self.now, _, action = heapq.heappop(self._queue)
                self._dispatch(action)
                for checker in self._checkers:
                    checker(self)
        except InvariantViolation:
            raise
        except AssertionError as exc:
            raise InvariantViolation(self.seed, self.now, str(exc) or type(exc).__name__,
                                     self.trace.tail(TRACE_CONTEXT)) from exc
        except Exception as exc:
            exc.add_note(f"simulation seed {self.seed} at t={self.now:.6f}s")
            raise
        self.now = max(self.now, until)

    def trace_hash(self) -> str:
        """SHA-256 (hex) of the trace so far; equal seeds give equal hashes."""
        return self.trace.hash()

    # --- the loop ----------------------------------------------------------

    def _host(self, node_id: str) -> _Host:
        try:
            return self._hosts[node_id]
        except KeyError:
            raise ValueError(f"no node {node_id!r} in this simulation; nodes are {list(self._hosts)}") from None

    def _known(self, node_id: str) -> str:
        self._host(node_id)
        return node_id

    def _not_past(self, time: float) -> float:
        if time < self.now:
            raise ValueError(f"time {time} is before now ({self.now})")
        return time

    def _push(self, time: float, action: Any) -> None:
        self._sequence += 1
        heapq.heappush(self._queue, (time, self._sequence, action))

    def _record(self, kind: Kind, node: str = "", peer: str = "", data: Any = None, detail: str = "") -> None:
        self.trace.add(Record(self.now, kind, node, peer, data, detail))

    def _dispatch(self, action: Any) -> None:
        match action:
            case _Tick(node_id, incarnation):
                self._tick(node_id, incarnation)
            case _Arrive(src, dst, payload):
                self._arrive(src, dst, payload)
            case _Synced(node_id, incarnation, upto):
                self._synced(node_id, incarnation, upto)
            case _PollDue(node_id, incarnation):
                host = self._hosts[node_id]
                if host.node is not None and host.incarnation == incarnation:
                    host.poll_due = False
                    self._poll(node_id, host)
            case _Apply(fault):
                self._apply(fault)
            case _Call(fn):
                self._record(Kind.CALL, detail=getattr(fn, "__qualname__", type(fn).__qualname__))
                fn(self)
                for node_id, host in self._hosts.items():
                    if host.node is not None:
                        self._poll(node_id, host)

    def _start(self, node_id: str) -> None:
        host = self._hosts[node_id]
        host.incarnation += 1
        host.poll_due = False
        durable = host.disk.durable_records()
        rng = random.Random(f"{self.seed}/{node_id}/{host.incarnation}")
        self._record(Kind.START, node_id, data=(host.incarnation, len(durable)))
        host.node = host.factory(node_id, durable, rng)
        self._poll(node_id, host)
        # A random phase keeps nodes from ticking in lockstep, as real ones never do.
        phase = self.rng.uniform(0.0, host.clock.virtual_interval(self.config.tick_interval))
        self._push(self.now + phase, _Tick(node_id, host.incarnation))

    def _tick(self, node_id: str, incarnation: int) -> None:
        host = self._hosts[node_id]
        if host.node is None or host.incarnation != incarnation:
            return
        now = host.clock.read(self.now)
        self._record(Kind.TICK, node_id, data=now)
        host.node.tick(now)
        self._poll(node_id, host)
        self._push(self.now + host.clock.virtual_interval(self.config.tick_interval), _Tick(node_id, incarnation))

    def _arrive(self, src: str, dst: str, payload: Payload) -> None:
        host = self._hosts[dst]
        reason = "down" if host.node is None else self._network.blocked(src, dst)
        if reason is not None:
            self._record(Kind.DROP, src, dst, payload.value, reason)
            return
        message = payload.open()
        self._record(Kind.DELIVER, dst, src, message)
        host.node.receive(src, message)
        lag = self.config.poll_lag
        if lag is None:
            self._poll(dst, host)
        elif not host.poll_due:
            host.poll_due = True
            self._push(self.now + self.rng.uniform(*lag), _PollDue(dst, host.incarnation))

    def _synced(self, node_id: str, incarnation: int, upto: int) -> None:
        host = self._hosts[node_id]
        if host.incarnation != incarnation or host.node is None:
            return
        host.disk.synced(upto)
        self._record(Kind.SYNC, node_id, data=host.disk.durable)
        while host.held and host.held[0][0] <= host.disk.durable:
            _, sends = host.held.popleft()
            self._transmit(node_id, sends)

    def _poll(self, node_id: str, host: _Host) -> None:
        assert host.node is not None
        output: Polled = host.node.poll()
        wire_only = self.config.wire_only
        before = host.disk.written
        if output.persist:
            upto = host.disk.write(tuple(Payload.of(r, wire_only=wire_only) for r in output.persist))
            done = max(host.disk.sync_done_at, self.now + self.rng.uniform(*self.config.fsync))
            host.disk.sync_done_at = done
            self._record(Kind.PERSIST, node_id, data=(len(output.persist), upto))
            self._push(done, _Synced(node_id, host.incarnation, upto))
        early = tuple((self._known(dst), Payload.of(msg, wire_only=wire_only))
                      for dst, msg in getattr(output, "send_early", ()))
        sends = tuple((self._known(dst), Payload.of(msg, wire_only=wire_only)) for dst, msg in output.send)
        for needed, batch in ((before, early), (host.disk.written, sends)):
            if not batch:
                continue
            if host.held or host.disk.durable < needed:  # behind what it waits for, or behind held sends
                host.held.append((needed, batch))
            else:
                self._transmit(node_id, batch)
        for event in output.events:
            self._record(Kind.EVENT, node_id, data=event)
            for observer in self._observers:
                observer(self.now, node_id, event)

    def _transmit(self, src: str, sends: tuple[tuple[str, Payload], ...]) -> None:
        for dst, payload in sends:
            fate = self._network.fate(self.rng, src, dst)
            if fate.dropped is not None:
                self._record(Kind.DROP, src, dst, payload.value, fate.dropped)
                continue
            self._record(Kind.SEND, src, dst, payload.value, "duplicated" if len(fate.delays) > 1 else "")
            for delay in fate.delays:
                self._push(self.now + delay, _Arrive(src, dst, payload))

    def _apply(self, fault: Any) -> None:
        match fault:
            case Crash(node_id):
                self._crash(node_id, fault)
            case Restart(node_id):
                down = self._hosts[node_id].node is None
                self._record(Kind.FAULT, node_id, data=fault, detail="" if down else "noop")
                if down:
                    self._start(node_id)
            case Skew(node_id, offset, rate):
                self._record(Kind.FAULT, node_id, data=fault)
                self._hosts[node_id].clock.skew(offset, rate)
            case _:
                self._record(Kind.FAULT, data=fault)
                self._network.apply(fault)

    def _crash(self, node_id: str, fault: Crash) -> None:
        host = self._hosts[node_id]
        if host.node is None:
            self._record(Kind.FAULT, node_id, data=fault, detail="noop")
            return
        self._record(Kind.FAULT, node_id, data=fault)
        for _, sends in host.held:
            for dst, payload in sends:
                self._record(Kind.DROP, node_id, dst, payload.value, "crash")
        host.held.clear()
        host.node = None  # queued ticks and fsyncs of this incarnation now find it gone
        self._record(Kind.CRASH, node_id, data=host.disk.crash(self.now))

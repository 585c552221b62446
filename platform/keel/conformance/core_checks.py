"""What the core conformance scenario checks, read from the events of one simulated run.

`Observer` watches every event as the simulation runs and records what the
checks need; `verdict` runs the checks that need the whole run. Each check
returns the first rule broken, in words, or None:

- one leader per term; the same command, answer and state-machine digest
  at every index on every server (state-machine safety, and durability: a
  committed entry lost in a crash is refilled by another command, which
  this catches); the same whole state wherever servers hashed it
  (`StateDigest`) at one index;
- a (client, seq) applied at several indexes gets one answer everywhere:
  the session table applied it once; no client is told `SessionExpired`
  for a request it still waits on (no session idles out or is evicted in a
  scenario); every put the pipelined client saw acknowledged is in the
  final state, and every put of it was applied once (version 1);
- the register history is linearizable;
- every watcher saw a prefix of the real event history: each event once,
  in revision order, none skipped;
- a lease kept alive for the last time after the faults healed expires no
  earlier than its TTL after that keep-alive was sent, and no later than
  `LEASE_SLACK_S` after the TTL from its answer (or from the deadline of a
  later keep-alive whose answer was lost: it may have landed);
- a lock is given only to a key that held it (came first in the queue, by
  the final history) at some moment between the request and its answer:
  never before it held it, never after it had lost it;
- a command commits within `LIVENESS_BOUND_S` after the faults healed, and
  the members of the final configuration converge.
"""

from __future__ import annotations

import hashlib
from typing import Any

from keel import wire
from keel.conformance.actors import ChangeMade, LeaseAsked, LeaseKept, LockAcquired, OpCompleted, OpInvoked, WatchSaw
from keel.conformance.checkers import History, check_linearizable
from keel.conformance.pipelined import KEY_PREFIX as PUT_PREFIX
from keel.conformance.pipelined import PipelinedPut, SessionRefused
from keel.conformance.sim_core import StateDigest
from keel.conformance.runner import SeedResult
from keel.consensus import Applied, Installed, RoleChanged
from keel.core import Command, LeaseExpire
from keel.core.machine import LOCK_PREFIX
from keel.core.api import Event, LeaseRevoke
from keel.sim import Simulation
from keel.transport import ErrorReply

__all__ = ["LEASE_SLACK_S", "LIVENESS_BOUND_S", "Observer"]

LIVENESS_BOUND_S = 3.0  # virtual seconds after healing within which a command must commit; ~10 election timeouts
LEASE_SLACK_S = 0.5  # seconds a calm leader may take past a TTL to expire it: ticks, one commit, the apply
LOCK_QUEUE = LOCK_PREFIX + b"turns/"  # the queue of the lock the scenario's lockers share


class Observer:
    """Reads the node events as they happen."""

    def __init__(self, *, healed_at: float, calm_from: float) -> None:
        self.history = History()
        self.handles: dict[tuple[str, int], Any] = {}
        self.applied: dict[int, tuple[str, bytes, bytes, bytes]] = {}  # index -> (first node, command, digest, answer)
        self.answers: dict[tuple[str, int], tuple[int, bytes]] = {}  # (client, seq) -> (index, encoded answer)
        self.leaders: dict[int, str] = {}  # term -> leader
        self.violation: str | None = None
        self.healed_at, self.calm_from = healed_at, calm_from
        self.progress_at: float | None = None
        self.installs = 0
        self.changes = 0
        self.watched: dict[str, list[Event]] = {}
        self.kept: dict[int, tuple[float, float, float]] = {}  # lease -> (ttl, last asked, last answered)
        self.sent_until: dict[int, float] = {}  # lease -> until when its latest keep-alive sent may still land
        self.ended: dict[int, float] = {}  # lease -> when its end was first applied
        self.locks: list[tuple[float, str, int, float]] = []  # (answered at, process, token, asked at)
        self.revision_at: dict[int, float] = {}  # keyspace revision -> when a node first applied it
        self.states: dict[int, tuple[str, bytes]] = {}  # index -> (first node, hash of its whole state)
        self.puts: dict[bytes, str] = {}  # pipelined put key -> completion

    def __call__(self, time: float, node: str, event: Any) -> None:
        if isinstance(event, OpInvoked):
            value = list(event.value) if isinstance(event.value, tuple) else event.value
            self.handles[(event.process, event.op)] = self.history.invoke(event.process, event.f, event.key, value,
                                                                          time=time)
        elif isinstance(event, OpCompleted):
            handle = self.handles.pop((event.process, event.op))
            getattr(self.history, event.completion)(handle, event.result, time=time)
        elif isinstance(event, Applied):
            self._applied(time, node, event)
        elif isinstance(event, RoleChanged) and event.role == "leader":
            other = self.leaders.setdefault(event.term, node)
            if other != node:
                self._fail(f"two leaders in term {event.term}: {other} and {node} (t={time:.3f})")
        elif isinstance(event, WatchSaw):
            self._watch(time, event)
        elif isinstance(event, LeaseKept):
            self.kept[event.id] = (event.ttl, event.asked, time)
        elif isinstance(event, LeaseAsked):
            self.sent_until[event.id] = max(self.sent_until.get(event.id, 0.0), event.until)
        elif isinstance(event, LockAcquired):
            self.locks.append((time, event.process, event.token, event.asked))
        elif isinstance(event, StateDigest):
            first = self.states.setdefault(event.index, (node, event.digest))
            if first[1] != event.digest:
                self._fail(f"index {event.index}: {first[0]} and {node} applied the same commands into different "
                           f"states (keys, leases or sessions differ) (t={time:.3f})")
        elif isinstance(event, PipelinedPut):
            self.puts[event.key] = event.completion
        elif isinstance(event, SessionRefused):
            self._fail(f"session {event.process}: request {event.seq}, still awaited by its client, was refused: "
                       f"{event.message} (t={time:.3f})")
        elif isinstance(event, Installed):
            self.installs += 1
        elif isinstance(event, ChangeMade):
            self.changes += 1

    def leader(self) -> str | None:
        """The leader of the highest term seen (it may have been deposed since)."""
        return self.leaders[max(self.leaders)] if self.leaders else None

    def result(self, seed: int, violation: str | None) -> SeedResult:
        return SeedResult(seed=seed, operations=len(self.history), violation=violation,
                          snapshots_installed=self.installs, membership_changes=self.changes)

    def verdict(self, sim: Simulation, servers: tuple[str, ...], end: float) -> str | None:
        """Every check over the whole run; the first rule broken, or None."""
        if self.violation is not None:
            return self.violation
        verdict = check_linearizable(self.history)
        if verdict.linearizable is not True:
            return f"{'not linearizable' if verdict.linearizable is False else 'linearizability unknown'}: " \
                   f"{verdict.explain()}"
        if self.progress_at is None or self.progress_at > self.healed_at + LIVENESS_BOUND_S:
            return (f"no progress: nothing committed within {LIVENESS_BOUND_S} s after the faults healed "
                    f"at t={self.healed_at}")
        member, problem = _converged(sim, servers)
        if problem is not None:
            return problem
        machine = sim.node(member).server.machine  # type: ignore[union-attr]
        return (self._check_watches(machine.events(b"k", prefix=True, start=1)) or self._check_leases(end)
                or self._check_locks(machine.events(LOCK_QUEUE, prefix=True, start=1))
                or self._check_puts(machine.store.range(PUT_PREFIX, prefix=True)[0]))

    # --- as the run goes -------------------------------------------------------------------

    def _applied(self, time: float, node: str, event: Applied) -> None:
        result = wire.encode(event.result)
        first = self.applied.setdefault(event.index, (node, event.command, event.digest, result))
        if first[1] != event.command:
            self._fail(f"index {event.index}: {first[0]} applied one command and {node} another (t={time:.3f})")
        elif first[2] != event.digest:
            self._fail(f"index {event.index}: {first[0]} and {node} reached different states (t={time:.3f})")
        elif first[3] != result:
            self._fail(f"index {event.index}: {first[0]} and {node} applied the same command with different answers: "
                       f"{wire.decode(first[3])!r:.100} and {event.result!r:.100} (t={time:.3f})")
        if time >= self.healed_at and self.progress_at is None:
            self.progress_at = time
        made = getattr(event.result, "revision", None) or getattr(event.result, "token", None)
        if isinstance(made, int):
            self.revision_at.setdefault(made, time)
        command = wire.decode(event.command)
        if not isinstance(command, Command):
            return
        if isinstance(command.op, (LeaseExpire, LeaseRevoke)) and not isinstance(event.result, ErrorReply):
            self.ended.setdefault(command.op.id, time)
        if command.seq > 0 and not (isinstance(event.result, ErrorReply) and event.result.kind == "session_expired"):
            # A refusal is not an execution: a late duplicate of an acknowledged request is refused so.
            seen = self.answers.setdefault((command.client, command.seq), (event.index, result))
            if seen[1] != result:
                self._fail(f"{command.client} request {command.seq} was applied twice, at index {seen[0]} and "
                           f"{event.index}, with different answers (t={time:.3f})")

    def _watch(self, time: float, event: WatchSaw) -> None:
        errors = [e for e in event.events if isinstance(e, ErrorReply)]
        if errors:
            self._fail(f"watcher {event.process}: {errors[0].message} (t={time:.3f})")
            return
        self.watched.setdefault(event.process, []).extend(event.events)

    def _fail(self, message: str) -> None:
        if self.violation is None:
            self.violation = message

    # --- at the end ------------------------------------------------------------------------

    def _check_watches(self, truth: list[Event]) -> str | None:
        for process, seen in sorted(self.watched.items()):
            if seen != truth[:len(seen)]:
                at = next(i for i, (a, b) in enumerate(zip(seen + [None], truth + [None])) if a != b)  # type: ignore[operator]
                got = seen[at] if at < len(seen) else None
                want = truth[at] if at < len(truth) else None
                return f"watcher {process}: event {at} was {got}, the history has {want} there"
        return None

    def _check_leases(self, end: float) -> str | None:
        for lease, (ttl, asked, answered) in sorted(self.kept.items()):
            if asked < self.calm_from:
                continue  # last kept while clocks were skewed and leaders changing: only the calm period is exact
            ended = self.ended.get(lease)
            if ended is not None and ended < asked + ttl:
                return f"lease {lease} ended at t={ended:.3f}, before its TTL ({ttl:g} s) from the keep-alive " \
                       f"sent at t={asked:.3f}"
            # A keep-alive sent later whose answer was lost may still have refreshed it, up to its deadline.
            last = max(answered, self.sent_until.get(lease, 0.0))
            limit = last + ttl + LEASE_SLACK_S
            if (ended is None and end > limit) or (ended is not None and ended > limit):
                when = f"at t={ended:.3f}" if ended is not None else "never"
                return f"lease {lease} ended {when}, more than {LEASE_SLACK_S} s past its TTL ({ttl:g} s) from " \
                       f"its last keep-alive (answered at t={answered:.3f}; the last one sent could land until " \
                       f"t={last:.3f})"
        return None

    def _check_puts(self, kvs: list[Any]) -> str | None:
        return _puts_checked(self.puts, kvs)

    def _check_locks(self, truth: list[Event]) -> str | None:
        held = _holders(truth)
        for answered, process, token, asked in sorted(self.locks):
            if token not in held:
                return f"lock given to {process} with token {token} at t={answered:.3f}, but that key never came " \
                       f"first in the queue (holders' tokens: {sorted(held)[:10]})"
            first, lost = held[token]
            since = self.revision_at.get(first, answered)
            if since > answered:
                return f"lock given to {process} (token {token}) at t={answered:.3f}, before it came first at " \
                       f"revision {first}, applied at t={since:.3f}"
            ended = self.revision_at.get(lost, asked) if lost is not None else asked
            if lost is not None and ended < asked:
                return f"lock given to {process} (token {token}) for a request asked at t={asked:.3f}, but it had " \
                       f"lost the lock at revision {lost}, applied at t={ended:.3f}: two holders"
        return None


def _puts_checked(puts: dict[bytes, str], kvs: list[Any]) -> str | None:
    """Every acknowledged put is there, no refused one is, and each was applied once (version 1)."""
    held = {kv.key: kv for kv in kvs}
    for key, completion in sorted(puts.items()):
        kv = held.get(key)
        if completion == "ok" and kv is None:
            return f"pipelined put {key!r} was acknowledged but is not in the final state"
        if completion == "fail" and kv is not None:
            return f"pipelined put {key!r} was refused but is in the final state"
    twice = [kv for kv in kvs if kv.version != 1]
    if twice:
        return f"pipelined put {twice[0].key!r} was applied {twice[0].version} times"
    return None


def _holders(truth: list[Event]) -> dict[int, tuple[int, int | None]]:
    """Token -> (the revision its key came first in its lock queue, the revision it stopped; None: still first)."""
    alive: dict[bytes, int] = {}
    held: dict[int, tuple[int, int | None]] = {}
    holder: int | None = None
    for i, event in enumerate(truth):
        if event.kind == "put":
            alive.setdefault(event.kv.key, event.kv.create_revision)
        else:
            alive.pop(event.kv.key, None)
        revision = event.kv.mod_revision
        if i + 1 < len(truth) and truth[i + 1].kv.mod_revision == revision:
            continue  # the rest of this revision's events first
        now = min(alive.values()) if alive else None
        if now != holder:
            if holder is not None:
                held[holder] = (held[holder][0], revision)
            if now is not None:
                held[now] = (revision, None)
            holder = now
    return held


def _converged(sim: Simulation, servers: tuple[str, ...]) -> tuple[str, str | None]:
    live = {s: sim.node(s).server for s in servers if sim.node(s) is not None}  # type: ignore[union-attr]
    leaders = [s for s, server in live.items() if server.node.engine.status().role == "leader"]
    if not leaders:
        return "", "no leader at the end of the calm period"
    leader = max(leaders, key=lambda s: live[s].node.engine.status().term)
    status = live[leader].node.engine.status()
    members = [s for s in status.voters + status.learners if s in live]
    states = {s: (live[s].machine.index, live[s].machine.digest.hex()[:12]) for s in members}
    if len(set(states.values())) > 1:
        return leader, f"members did not converge by the end: {states}"
    # The digest chains commands only; the whole state (keys, history, leases, sessions) must agree too.
    contents = {s: hashlib.sha256(live[s].machine.snapshot()).hexdigest()[:12] for s in members}
    if len(set(contents.values())) > 1:
        return leader, f"members applied the same commands but hold different states: {contents}"
    return leader, None

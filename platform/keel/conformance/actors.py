"""Simulated clients of the core, each a `keel.sim` node that reports what it saw as events.

- `RegisterClient`: reads, writes, cas and deletes on a few keys, one at a
  time like a Jepsen process; every operation becomes `OpInvoked` then
  `OpCompleted` (ok, fail, or info when no answer came by its deadline).
  Writes carry a session seq, so a retry at another server is applied once.
- `Watcher`: watches a prefix from revision 1 through whichever server it
  reaches, and reports every event it receives (`WatchSaw`).
- `LeaseHolder`: grants a lease, puts a key under it, keeps it alive until
  `stop_at`, then falls silent (`LeaseKept` for each keep-alive answered).
- `Locker`: holds a lease, queues for a lock, holds it a while, releases it,
  again and again (`LockAcquired`).
- `Operator`: changes the membership (`ChangeMade`), see its docstring.

Written values are unique per client and operation, so a read names the
write it saw. Clients never crash; faults target servers only.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import attrs

from keel.client.session import Session
from keel.conformance.pipelined import SessionRefused
from keel.conformance.sim_core import Caller
from keel.core.api import (
    Call, ChangeMembership, Compare, CoreStatus, CoreStatusReply, Delete, DeleteReply, LeaseGrant, LeaseGrantReply, LeaseKeepAlive,
    LeaseKeepAliveReply, Lock, LockReply, MembershipReply, Put, PutReply, Range, RangeReply, ReleaseReply, Txn,
    TxnReply, Unlock, Watch, WatchReply,
)
from keel.sim import Output
from keel.transport import ErrorReply

__all__ = ["ChangeMade", "LeaseAsked", "LeaseKept", "LeaseHolder", "LockAcquired", "Locker", "OpCompleted", "OpInvoked",
           "Operator", "RegisterClient", "WatchSaw", "Watcher"]

VALUE_SPACE = 1_000_000  # written values are client_number * VALUE_SPACE + op number, so each is unique
OPERATOR_TIMEOUT_S = 1.0  # seconds the operator gives one request, retries included


@attrs.frozen
class OpInvoked:
    process: str
    op: int
    f: str
    key: str
    value: Any  # write: the value; cas: (expected, new); read/delete: None


@attrs.frozen
class OpCompleted:
    process: str
    op: int
    completion: str  # ok, fail, info
    result: Any = None  # what a read saw


@attrs.frozen
class WatchSaw:
    process: str
    events: tuple[Any, ...]


@attrs.frozen
class LeaseKept:
    """Event: lease `id` was granted or kept alive by a request sent at `asked`."""

    process: str
    id: int
    ttl: float
    asked: float


@attrs.frozen
class LeaseAsked:
    """Event: a keep-alive for lease `id` was sent; a retry of it may still reach a leader until `until`."""

    process: str
    id: int
    until: float


@attrs.frozen
class LockAcquired:
    """Event: a lock request asked at `asked` was answered "acquired" with fencing token `token`."""

    process: str
    token: int
    asked: float


@attrs.frozen
class ChangeMade:
    action: str
    node: str


class _Actor:
    """What every simulated client shares: a caller, a session, and its outputs."""

    def __init__(self, node_id: str, rng: random.Random, servers: tuple[str, ...]) -> None:
        self.node_id = node_id
        self.rng = rng
        self.caller = Caller(node_id, rng, servers)
        # The real client's session rules. One request at a time never has more than one unsettled,
        # so a window of 1 holds whatever window the core keeps.
        renewals = itertools.count(1)
        self.session = Session(node_id, window=1, new_id=lambda: f"{node_id}.{next(renewals)}")
        self.now = 0.0
        self.events: list[Any] = []

    def tick(self, now: float) -> None:
        self.now = now
        self.caller.tick(now)
        if self.caller.idle:
            self.step()

    def receive(self, src: str, message: Any) -> None:
        self.caller.receive(src, message)
        if self.caller.idle:
            self.step()

    def poll(self) -> Output:
        out = Output(send=self.caller.take_sends(), events=self.events)
        self.events = []
        return out

    def step(self) -> None:
        """The caller is idle: start the next request, if any."""

    def mutate(self, op: Any, timeout: float, done: Any) -> None:
        """Send a request that goes through the log, with the next session seq."""
        client, seq = self.session.begin()

        def finished(reply: Any, maybe: bool) -> None:
            if isinstance(reply, ErrorReply) and reply.kind == "session_expired":
                self.events.append(SessionRefused(client, seq, reply.message))
                self.session.expired(client)
            # Answered, or given up at its deadline: either way never sent again, so settled.
            self.session.settle(client, seq, answered=reply is not None)
            done(reply, maybe)

        self.caller.call(Call(client, seq, self.session.acked_for(client), op), timeout=timeout, on_done=finished)

    def read(self, op: Any, timeout: float, done: Any) -> None:
        self.caller.call(Call(self.session.client, 0, self.session.acked, op), timeout=timeout, on_done=done)

    def _keep_alive(self, lease: int, timeout: float, done: Any) -> None:
        # Announced as sent: a keep-alive whose answer is lost still refreshes the lease where it lands.
        self.events.append(LeaseAsked(self.node_id, lease, self.now + timeout))
        self.read(LeaseKeepAlive(lease), timeout, done)


class RegisterClient(_Actor):
    """Register operations on a few keys; see the module doc."""

    def __init__(self, node_id: str, rng: random.Random, *, number: int, servers: tuple[str, ...],
                 keys: tuple[str, ...], timeout: float, think: tuple[float, float], stop_at: float) -> None:
        super().__init__(node_id, rng, servers)
        self.number, self.keys, self.timeout, self.think, self.stop_at = number, keys, timeout, think, stop_at
        self.ops = 0
        self.next_at = rng.uniform(*think)
        self.seen: dict[str, int | None] = {}  # each key's value when this client last read it

    def step(self) -> None:
        if self.now < self.next_at or self.now >= self.stop_at:
            return
        self.ops += 1
        number = self.ops
        f = self.rng.choice(("read", "read", "write", "cas", "delete"))
        key = self.rng.choice(self.keys)
        value = self.number * VALUE_SPACE + number
        expected = self.seen.get(key)  # read-modify-write, so many cas succeed
        shown = {"write": value, "cas": (expected, value)}.get(f)
        self.events.append(OpInvoked(self.node_id, number, f, key, shown))

        def done(reply: Any, maybe: bool) -> None:
            self._complete(number, f, key, reply, maybe)

        k = key.encode()
        if f == "read":
            self.read(Range(k), self.timeout, done)
        elif f == "write":
            self.mutate(Put(k, str(value).encode()), self.timeout, done)
        elif f == "delete":
            self.mutate(Delete(k), self.timeout, done)
        else:
            compare = (Compare(k, "version", "==", number=0) if expected is None
                       else Compare(k, "value", "==", str(expected).encode()))
            self.mutate(Txn(compare=(compare,), success=(Put(k, str(value).encode()),)), self.timeout, done)

    def _complete(self, number: int, f: str, key: str, reply: Any, maybe: bool) -> None:
        self.next_at = self.now + self.rng.uniform(*self.think)
        if reply is None:
            completion, result = "info", None
        elif isinstance(reply, RangeReply):
            result = int(reply.kvs[0].value) if reply.kvs else None
            self.seen[key] = result
            completion = "ok"
        elif isinstance(reply, TxnReply):
            completion, result = ("ok" if reply.succeeded else "fail"), None
        elif isinstance(reply, (PutReply, DeleteReply)):
            completion, result = "ok", None
        elif isinstance(reply, ErrorReply) and reply.kind == "session_expired":
            completion, result = "info", None  # an earlier attempt may have been applied
        else:  # an ErrorReply: the request's one answer says it took no effect
            completion, result = "fail", None
        self.events.append(OpCompleted(self.node_id, number, completion, result))


class Watcher(_Actor):
    """Watches `prefix` from revision 1 and reports every event once it arrives."""

    def __init__(self, node_id: str, rng: random.Random, *, servers: tuple[str, ...], prefix: bytes,
                 stop_at: float) -> None:
        super().__init__(node_id, rng, servers)
        self.prefix, self.stop_at = prefix, stop_at
        self.start = 1

    def step(self) -> None:
        if self.now < self.stop_at:
            self.read(Watch(self.prefix, prefix=True, start_revision=self.start, wait=0.5), 1.5, self._done)

    def _done(self, reply: Any, maybe: bool) -> None:
        if isinstance(reply, WatchReply):
            if reply.events:
                self.events.append(WatchSaw(self.node_id, reply.events))
            self.start = reply.next_revision
        elif isinstance(reply, ErrorReply):
            self.events.append(WatchSaw(self.node_id, (reply,)))  # a compaction the scenario never made


class LeaseHolder(_Actor):
    """Grants a lease with a key under it and keeps it alive until `stop_at`; regrants one it lost."""

    def __init__(self, node_id: str, rng: random.Random, *, servers: tuple[str, ...], ttl: float,
                 stop_at: float) -> None:
        super().__init__(node_id, rng, servers)
        self.ttl, self.stop_at = ttl, stop_at
        self.lease: int | None = None
        self.keyed = False
        self.next_at = 0.0

    def step(self) -> None:
        if self.now >= self.stop_at or self.now < self.next_at:
            return
        asked = self.now
        if self.lease is None:
            self.mutate(LeaseGrant(self.ttl), self.ttl, lambda r, m: self._granted(r, asked))
        elif not self.keyed:
            key = f"lease/{self.node_id}/{self.lease}".encode()
            self.mutate(Put(key, b"alive", lease=self.lease), self.ttl / 2, self._put)
        else:
            self._keep_alive(self.lease, self.ttl / 4, lambda r, m: self._kept(r, asked))

    def _granted(self, reply: Any, asked: float) -> None:
        if isinstance(reply, LeaseGrantReply):
            self.lease, self.keyed = reply.id, False
            self.events.append(LeaseKept(self.node_id, reply.id, reply.ttl, asked))

    def _put(self, reply: Any, maybe: bool) -> None:
        if isinstance(reply, PutReply):
            self.keyed = True
        elif isinstance(reply, ErrorReply) and reply.kind == "lease_expired":
            self.lease = None

    def _kept(self, reply: Any, asked: float) -> None:
        if isinstance(reply, LeaseKeepAliveReply):
            self.events.append(LeaseKept(self.node_id, reply.id, reply.ttl, asked))
            self.next_at = self.now + self.ttl / 4
        elif isinstance(reply, ErrorReply) and reply.kind == "lease_expired":
            self.lease = None


class Locker(_Actor):
    """Queues for lock `name` under its own lease, holds it a little, releases it; again and again."""

    def __init__(self, node_id: str, rng: random.Random, *, servers: tuple[str, ...], name: bytes, ttl: float,
                 hold: tuple[float, float], stop_at: float) -> None:
        super().__init__(node_id, rng, servers)
        self.name, self.ttl, self.hold, self.stop_at = name, ttl, hold, stop_at
        self.lease: int | None = None
        self.key: bytes | None = None  # held
        self.release_at = 0.0
        self.keep_at = 0.0

    def step(self) -> None:
        if self.now >= self.stop_at:
            return
        asked = self.now
        if self.lease is None:
            self.mutate(LeaseGrant(self.ttl), self.ttl / 2, lambda reply, maybe: self._granted(reply, asked))
        elif self.now >= self.keep_at:
            self._keep_alive(self.lease, self.ttl / 4, lambda reply, maybe: self._kept(reply, asked))
        elif self.key is None:
            asked = self.now
            self.mutate(Lock(self.name, self.lease, wait=self.ttl / 8), self.ttl / 4,
                        lambda reply, maybe: self._locked(reply, asked))
        elif self.now >= self.release_at:
            self.mutate(Unlock(self.key), self.ttl / 4, self._released)

    def _granted(self, reply: Any, asked: float) -> None:
        if isinstance(reply, LeaseGrantReply):
            self.lease, self.keep_at = reply.id, self.now + self.ttl / 4
            self.events.append(LeaseKept(self.node_id, reply.id, reply.ttl, asked))

    def _kept(self, reply: Any, asked: float) -> None:
        if isinstance(reply, LeaseKeepAliveReply):
            self.keep_at = self.now + self.ttl / 4
            self.events.append(LeaseKept(self.node_id, reply.id, reply.ttl, asked))
        elif isinstance(reply, ErrorReply) and reply.kind == "lease_expired":
            self.lease = self.key = None

    def _locked(self, reply: Any, asked: float) -> None:
        if isinstance(reply, LockReply) and reply.acquired:
            self.key = reply.key
            self.release_at = self.now + self.rng.uniform(*self.hold)
            self.events.append(LockAcquired(self.node_id, reply.token, asked))
        elif isinstance(reply, ErrorReply) and reply.kind == "lease_expired":
            self.lease = self.key = None

    def _released(self, reply: Any, maybe: bool) -> None:
        if isinstance(reply, (ReleaseReply, ErrorReply)):
            self.key = None


class Operator(_Actor):
    """Moves the membership through `goals`, one server change at a time.

    Each goal is a state one server should reach: `("voter", node)` (add it
    as a learner, then promote it once it has caught up) or `("out", node)`
    (remove it). Every `step_s` seconds it asks the one change that moves the
    current goal forward, as seen in the configuration the leader last
    reported. A refused change (a learner not caught up, another change in
    flight) is asked again at the next step; a change lost with a crashed
    leader shows as a goal not met and is asked again too.
    """

    def __init__(self, node_id: str, rng: random.Random, *, servers: tuple[str, ...], voters: tuple[str, ...],
                 goals: tuple[tuple[str, str], ...], step_s: float, start_at: float, stop_at: float) -> None:
        super().__init__(node_id, rng, servers)
        self.goals, self.step_s, self.stop_at = list(goals), step_s, stop_at
        self.voters, self.learners = voters, ()
        self.next_at = start_at
        self.stale = False  # a change was refused: ask for the configuration before the next one

    def step(self) -> None:
        if self.now < self.next_at or self.now >= self.stop_at:
            return
        self.next_at = self.now + self.step_s
        if self.stale:
            self.caller.call(CoreStatus(), timeout=OPERATOR_TIMEOUT_S, on_done=lambda reply, maybe: self._learn(reply))
            return
        change = self.next_change()
        if change is not None:
            self.read(ChangeMembership(*change), OPERATOR_TIMEOUT_S, lambda reply, maybe: self._done(change, reply))

    def next_change(self) -> tuple[str, str] | None:
        """The change that moves the first unmet goal forward; None once every goal is met."""
        while self.goals:
            want, node = self.goals[0]
            if want == "voter" and node not in self.voters:
                return ("promote", node) if node in self.learners else ("add_learner", node)
            if want == "out" and node in self.voters + self.learners:
                return "remove", node
            self.goals.pop(0)
        return None

    def _done(self, change: tuple[str, str], reply: Any) -> None:
        if isinstance(reply, MembershipReply):
            self.voters, self.learners = reply.voters, reply.learners
            self.events.append(ChangeMade(*change))
        elif isinstance(reply, ErrorReply):
            self.stale = True

    def _learn(self, reply: Any) -> None:
        if isinstance(reply, CoreStatusReply) and reply.role == "leader":
            self.voters, self.learners = reply.voters, reply.learners
            self.stale = False

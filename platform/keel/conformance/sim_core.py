"""The core service in the simulator: servers, and the caller every simulated client is built on.

`SimCoreServer` is a `keel.sim` node around the real `CoreServer`: clients
send it `Request(id, body)` and get `Response(id, body)` back, as the TCP
transport would carry them. Each incarnation's clock starts at a random
offset, as a real process's does, and its machine (`StateCheckedMachine`)
reports a hash of its whole state every `STATE_EVERY` indexes
(`StateDigest`), for the checks to compare across servers.

`Caller` is a simulated client's connection logic, one request at a time:
it sends to the server it believes leads, follows `NotLeader` hints (once
per reply: a duplicated redirect is not followed twice), backs off when
nobody knows a leader, and retries a request that timed out at another
server with the same `Call` (same session seq), as a real client does, up
to its deadline. Its owner learns the outcome through `on_done(reply)`,
where `reply` is the answer, an `ErrorReply`, or None for a deadline with
no answer; `maybe` says whether an unanswered attempt may have taken
effect (so the history records `info`, not `fail`).
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from keel.consensus import EngineFactory, EngineSettings, Entry
from keel.core import CoreMachine, CoreServer
from keel.sim import Output
from keel.transport import ErrorReply, Request, Response

__all__ = ["ATTEMPT_S", "REDIRECT_BACKOFF_S", "Caller", "SimCoreServer", "StateCheckedMachine", "StateDigest"]

CLOCK_OFFSET_S = 200_000.0  # a server's clock starts anywhere below this, like Trio's (10^4 to 2*10^5 s)
STATE_EVERY = 50  # indexes between hashes of a server's whole state
ATTEMPT_S = 0.3  # seconds one attempt waits before the request is retried elsewhere
REDIRECT_BACKOFF_S = 0.05  # seconds to wait when no server knows a leader; about one heartbeat


@attrs.frozen
class StateDigest:
    """Event: a server's whole state machine (keys, history, leases, sessions) hashed at `index`."""

    index: int
    digest: bytes


class StateCheckedMachine(CoreMachine):
    """The core's machine, noting a hash of its whole state every `STATE_EVERY` indexes.

    The machine's own digest chains the commands only; two replicas that
    applied the same commands into different states (a snapshot that does
    not match its index, say) are caught by comparing these.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.states: list[StateDigest] = []

    def apply(self, entry: Entry) -> Any:
        result = super().apply(entry)
        if entry.index % STATE_EVERY == 0:
            self.states.append(StateDigest(entry.index, hashlib.sha256(self.snapshot()).digest()))
        return result


class SimCoreServer:
    """A `CoreServer` as a simulated node.

    Its clock starts at a random offset drawn for each incarnation, as
    Trio's clock does in every process: nothing may mistake a node's own
    clock for the log's time (a new leader once stamped its commands so).
    It reports `StateDigest` events from its machine.
    """

    def __init__(self, node_id: str, durable: tuple[Any, ...], rng: random.Random, *, create: EngineFactory,
                 settings: EngineSettings, snapshot_every: int,
                 machine: Callable[[], StateCheckedMachine] = StateCheckedMachine, **server: Any) -> None:
        """`server`: more of `CoreServer`'s keywords (`controller=`, for the data half)."""
        self.offset = rng.uniform(0.0, CLOCK_OFFSET_S)
        self.server = CoreServer.from_durable(node_id, durable, rng, create=create, settings=settings, **server,
                                              snapshot_every=snapshot_every, machine=machine)

    def tick(self, now: float) -> None:
        self.server.tick(now + self.offset)

    def receive(self, src: str, message: Any) -> None:
        if isinstance(message, Request):
            self.server.request((src, message.id), message.body)
        else:
            self.server.receive(src, message)

    def poll(self) -> Output:
        out = self.server.poll()
        replies = [(client, Response(rid, reply)) for (client, rid), reply in out.replies]
        machine = self.server.machine
        states: list[Any] = []
        if isinstance(machine, StateCheckedMachine) and machine.states:
            states, machine.states = machine.states, []
        return Output(persist=out.persist, send_early=out.send_early, send=(*out.send, *replies),
                      events=(*out.events, *states))


@attrs.define
class _Pending:
    body: Any
    deadline: float  # give up after this
    on_done: Callable[[Any, bool], None]
    ids: set[int]  # every attempt's request id: a late answer to any of them counts
    target: str
    attempt_ends: float
    awaiting: bool = True  # False between a redirect and the resend
    hops: int = 0
    resend_at: float | None = None
    maybe: bool = False  # some attempt got no answer: it may have taken effect


class Caller:
    """One request at a time to the core, with redirects, retries and a deadline."""

    def __init__(self, node_id: str, rng: random.Random, servers: tuple[str, ...],
                 ids: Iterator[int] | None = None) -> None:
        self.node_id = node_id
        self.rng = rng
        self.servers = servers
        self.leader = rng.choice(servers)
        self.now = 0.0
        self.pending: _Pending | None = None
        self._ids = ids if ids is not None else itertools.count(1)  # shared by the callers of one client node
        self.send: list[tuple[str, Any]] = []

    @property
    def idle(self) -> bool:
        return self.pending is None

    def call(self, body: Any, *, timeout: float, on_done: Callable[[Any, bool], None]) -> None:
        """Send `body`; `on_done(reply or None, maybe)` once answered or after `timeout` seconds."""
        assert self.pending is None, "one request at a time"
        self.pending = _Pending(body, self.now + timeout, on_done, set(), self.leader, 0.0)
        self._attempt()

    def tick(self, now: float) -> None:
        self.now = now
        p = self.pending
        if p is None:
            return
        if now >= p.deadline:
            self._finish(None, maybe=True)
        elif p.resend_at is not None and now >= p.resend_at:
            self._attempt()
        elif p.awaiting and now >= p.attempt_ends:
            p.maybe = True  # that attempt may still land; the retry carries the same seq
            p.target = self.leader = self._other(p.target)
            self._attempt()

    def receive(self, src: str, message: Any) -> bool:
        """Take a `Response`; True if it was for this caller's pending request."""
        p = self.pending
        if not isinstance(message, Response) or p is None or message.id not in p.ids:
            return False
        reply = message.body
        if isinstance(reply, ErrorReply) and reply.kind in ("not_leader", "unavailable"):
            if src != p.target or not p.awaiting:
                return True  # a duplicate, or the answer to an attempt already given up on
            hint = reply.leader_hint
            hinted = hint in self.servers and hint != src
            p.target = self.leader = hint if hinted else self._other(src)  # type: ignore[assignment]
            p.awaiting, p.hops = False, p.hops + 1
            if hinted and p.hops <= len(self.servers):
                self._attempt()
            else:
                p.hops, p.resend_at = 0, self.now + REDIRECT_BACKOFF_S
            return True
        self.leader = src
        self._finish(reply, maybe=False)
        return True

    def _attempt(self) -> None:
        p = self.pending
        assert p is not None
        request_id = next(self._ids)
        p.ids.add(request_id)
        p.awaiting, p.resend_at, p.attempt_ends = True, None, self.now + ATTEMPT_S
        self.send.append((p.target, Request(request_id, p.body)))

    def _finish(self, reply: Any, *, maybe: bool) -> None:
        p = self.pending
        assert p is not None
        self.pending = None
        p.on_done(reply, maybe or p.maybe)

    def _other(self, server: str) -> str:
        others = [s for s in self.servers if s != server]
        return self.rng.choice(others) if others else server

    def take_sends(self) -> list[tuple[str, Any]]:
        sends, self.send = self.send, []
        return sends

"""A simulated client of the conformance key-value service: a `keel.sim` node.

One operation at a time, like a Jepsen process: pick an operation, send it
to the server it believes leads, follow redirects, and give up after
`timeout` seconds of its own clock. Every operation is reported as events
the history recorder turns into invoke/ok/fail/info:

- `ok`: the server applied it (a cas that found the expected value) or,
  for a read, answered after the read barrier;
- `fail`: certainly not applied (a cas that found another value; a write
  the server saw replaced in the log; a read it could not serve);
- `info`: no answer by the deadline: it may or may not have happened.

Written values are unique per client and operation, so a read names the
write it saw. A client never crashes; the fault schedule only targets
servers.
"""

from __future__ import annotations

import random
from typing import Any

import attrs

from keel.conformance.kv import KvReply, KvRequest
from keel.sim import Output

__all__ = ["KvClient", "OpCompleted", "OpInvoked"]

VALUE_SPACE = 1_000_000  # written values are client_number * VALUE_SPACE + seq, so each is unique
REDIRECT_BACKOFF_S = 0.05  # seconds to wait before retrying when no server knows a leader; about one heartbeat


@attrs.frozen
class OpInvoked:
    """Event: the client started an operation."""

    process: str
    seq: int
    f: str
    key: str
    value: Any  # write: the value; cas: (expected, new); read/delete: None


@attrs.frozen
class OpCompleted:
    """Event: the operation ended as ok, fail or info; `result` is what a read saw."""

    process: str
    seq: int
    completion: str
    result: Any = None


@attrs.define
class _Pending:
    request: KvRequest
    deadline: float
    target: str  # the server the request was last sent to
    awaiting: bool = True  # False between a redirect and the resend: a duplicated redirect is ignored
    hops: int = 0  # redirects followed at once; past one per server, the client backs off
    resend_at: float | None = None


class KvClient:
    """A client process: operations one at a time, with redirects and a deadline."""

    def __init__(self, node_id: str, rng: random.Random, *, number: int, servers: tuple[str, ...],
                 keys: tuple[str, ...], timeout: float, think: tuple[float, float], stop_at: float) -> None:
        self.node_id = node_id
        self.rng = rng
        self.number = number
        self.servers = servers
        self.keys = keys
        self.timeout = timeout  # seconds before an unanswered operation is reported indeterminate
        self.think = think  # seconds between operations, drawn uniformly
        self.stop_at = stop_at  # local time after which no new operation starts
        self.seq = 0
        self.leader = rng.choice(servers)
        self.pending: _Pending | None = None
        self.seen: dict[str, int | None] = {}  # the value each key had when this client last read it
        self.next_at = rng.uniform(*think)
        self.now = 0.0
        self._send: list[tuple[str, Any]] = []
        self._events: list[Any] = []

    @property
    def idle(self) -> bool:
        return self.pending is None

    def tick(self, now: float) -> None:
        self.now = now
        if self.pending is not None and now >= self.pending.deadline:
            self._complete("info")
        pending = self.pending
        if pending is not None and pending.resend_at is not None and now >= pending.resend_at:
            self._resend(pending)
        if self.pending is None and now >= self.next_at and now < self.stop_at:
            self._start()

    def receive(self, src: str, message: Any) -> None:
        pending = self.pending
        if not isinstance(message, KvReply) or pending is None or message.seq != pending.request.seq:
            return  # a late answer to an operation already given up on
        if message.outcome == "redirect":
            # Not applied there: safe to send the same request (same seq) elsewhere.
            if src != pending.target or not pending.awaiting:
                return  # a duplicate, or the answer to an attempt already redirected
            hinted = message.leader_hint in self.servers and message.leader_hint != src
            self.leader = message.leader_hint if hinted else self._other(src)  # type: ignore[assignment]
            pending.target, pending.awaiting = self.leader, False
            pending.hops += 1
            if hinted and pending.hops <= len(self.servers):
                self._resend(pending)
            else:  # nobody knows a leader yet, or the hints go round in circles: give an election time
                pending.hops, pending.resend_at = 0, self.now + REDIRECT_BACKOFF_S
            return
        if message.outcome == "ok":
            if pending.request.f == "read":
                self.seen[pending.request.key] = message.value
            self._complete("ok", message.value if pending.request.f == "read" else None)
        else:
            self._complete("fail")

    def poll(self) -> Output:
        out = Output(send=self._send, events=self._events)
        self._send, self._events = [], []
        return out

    def _resend(self, pending: _Pending) -> None:
        pending.awaiting, pending.resend_at = True, None
        self._send.append((pending.target, pending.request))

    def _other(self, server: str) -> str:
        others = [s for s in self.servers if s != server]
        return self.rng.choice(others) if others else server

    def _start(self) -> None:
        self.seq += 1
        f = self.rng.choice(("read", "read", "write", "cas", "delete"))
        key = self.rng.choice(self.keys)
        value = expected = None
        if f == "write":
            value = self.number * VALUE_SPACE + self.seq
        elif f == "cas":
            # Expect the value last read there (read-modify-write), so many cas succeed.
            expected = self.seen.get(key)
            value = self.number * VALUE_SPACE + self.seq
        request = KvRequest(self.node_id, self.seq, f, key, value, expected)
        self.pending = _Pending(request, self.now + self.timeout, self.leader)
        shown = (expected, value) if f == "cas" else value
        self._events.append(OpInvoked(self.node_id, self.seq, f, key, shown))
        self._send.append((self.leader, request))

    def _complete(self, completion: str, result: Any = None) -> None:
        assert self.pending is not None
        self._events.append(OpCompleted(self.node_id, self.pending.request.seq, completion, result))
        if completion == "info":
            self.leader = self._other(self.pending.target)  # the one we tried may be down
        self.pending = None
        self.next_at = self.now + self.rng.uniform(*self.think)

"""A pipelined client: one session shared by many requests in flight, as one `keel.connect` client used by many tasks.

Each of its `slots` is one task of the program: it puts a key of its own
(`p/<client>/<n>`, never written again), waits for the answer or its
deadline, pauses, and puts the next. Every slot shares one session, the
real client's `keel.client.session.Session`, window and all: a slot whose
next seq would be beyond the window waits for room, as the real caller
does. An answer lost on the way, or a retry that waits out a leader
change, holds one request back while later ones are answered: the case
where a core that kept only a bounded number of answers per client forgot
the held one's, and told its client, which still waited for it, that it had
acknowledged it.

Events: `PipelinedPut(process, key, completion)` for every put that
ended ("ok"; "fail" for an answer that says it was not applied; "info" when
it ran out of time unanswered), and `SessionRefused(process, seq,
message)` when the core answered a request the client still waited for
with `SessionExpired`. In the scenario no session idles for an hour or is
evicted, so that is always a violation.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import attrs

from keel.client.session import Session
from keel.conformance.sim_core import Caller
from keel.core.api import Call, Put, PutReply
from keel.sim import Output
from keel.transport import ErrorReply

__all__ = ["KEY_PREFIX", "PipelinedClient", "PipelinedPut", "SessionRefused"]

KEY_PREFIX = b"p/"


@attrs.frozen
class PipelinedPut:
    process: str
    key: bytes
    completion: str  # ok, fail, info


@attrs.frozen
class SessionRefused:
    process: str
    seq: int
    message: str


class PipelinedClient:
    """Many puts in flight on one session; see the module doc."""

    def __init__(self, node_id: str, rng: random.Random, *, servers: tuple[str, ...], slots: int, window: int,
                 timeout: float, think: tuple[float, float], stop_at: float) -> None:
        self.node_id = node_id
        self.rng = rng
        self.timeout, self.think, self.stop_at = timeout, think, stop_at
        renewals = itertools.count(1)
        self.session = Session(node_id, window=window, new_id=lambda: f"{node_id}.{next(renewals)}")
        ids = itertools.count(1)  # request ids are the node's, shared by every slot
        self.slots = [Caller(node_id, rng, servers, ids) for _ in range(slots)]
        self.next_at = [rng.uniform(*think) for _ in range(slots)]
        self.puts = 0
        self.now = 0.0
        self.events: list[Any] = []

    def tick(self, now: float) -> None:
        self.now = now
        for caller in self.slots:
            caller.tick(now)
        self._step()

    def receive(self, src: str, message: Any) -> None:
        for caller in self.slots:
            if caller.receive(src, message):
                break
        self._step()

    def poll(self) -> Output:
        sends = [send for caller in self.slots for send in caller.take_sends()]
        out = Output(send=sends, events=self.events)
        self.events = []
        return out

    def _step(self) -> None:
        if self.now >= self.stop_at:
            return
        for i, caller in enumerate(self.slots):
            if caller.idle and self.now >= self.next_at[i] and self.session.room():
                self._put(i, caller)

    def _put(self, slot: int, caller: Caller) -> None:
        self.puts += 1
        key = KEY_PREFIX + f"{self.node_id}/{self.puts}".encode()
        client, seq = self.session.begin()

        def done(reply: Any, maybe: bool) -> None:
            self.next_at[slot] = self.now + self.rng.uniform(*self.think)
            if isinstance(reply, PutReply):
                completion = "ok"
            elif isinstance(reply, ErrorReply) and reply.kind == "session_expired":
                self.events.append(SessionRefused(client, seq, reply.message))
                self.session.expired(client)
                completion = "info"
            elif isinstance(reply, ErrorReply):
                completion = "fail"
            else:
                completion = "info"  # no answer by the deadline: it may still be applied
            self.session.settle(client, seq, answered=completion != "info")
            self.events.append(PipelinedPut(self.node_id, key, completion))

        body = Call(client, seq, self.session.acked_for(client), Put(key, b"x"))
        caller.call(body, timeout=self.timeout, on_done=done)

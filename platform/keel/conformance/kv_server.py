"""A server of the conformance key-value service: an engine's sim node that answers clients.

It wraps `keel.consensus.EngineNode` (the engine, its simulated disk and
the state machine) and turns `KvRequest`s from client nodes into engine
calls, then engine events into `KvReply`s:

- a write, cas or delete is proposed; the engine returns the index it
  would take. When that index is applied, the reply says what the machine
  returned if the command there is ours, and `fail` if another command took
  the index (ours was overwritten and will never apply). A server that loses
  leadership with proposals pending says nothing: they may still commit,
  and the client's deadline turns them into `info`.
- a read asks for a read barrier and is answered with the key's value once
  the machine has applied up to the barrier; a barrier abandoned because the
  node stopped leading is answered `fail` (a read changes nothing).
- a membership change is handed to the engine and answered at once with
  the configuration the server now holds; the operator (`kv_admin`) asks
  again until that configuration shows what it wanted.
- a node that does not lead answers `redirect` with its leader hint.
"""

from __future__ import annotations

import random
from typing import Any

from keel import wire
from keel.conformance.kv import ChangeReply, ChangeRequest, KvMachine, KvReply, KvRequest
from keel.consensus import Applied, EngineFactory, EngineNode, EngineSettings, MembershipChange, ReadAbandoned, \
    ReadServed
from keel.errors import KeelError, NotLeader
from keel.sim import Output

__all__ = ["KvServer"]


class KvServer:
    """One server node of the conformance cluster; a `keel.sim` node."""

    def __init__(self, node_id: str, durable: tuple[Any, ...], rng: random.Random, *, create: EngineFactory,
                 settings: EngineSettings, snapshot_every: int) -> None:
        self.node = EngineNode.from_durable(node_id, durable, rng, create=create, settings=settings,
                                            snapshot_every=snapshot_every, machine=KvMachine)
        self._proposed: dict[int, tuple[str, int, bytes]] = {}  # index -> (client, seq, command bytes)
        self._reads: dict[int, tuple[str, int]] = {}  # read request id -> (client, seq)
        self._next_read = 0
        self._replies: list[tuple[str, Any]] = []

    def tick(self, now: float) -> None:
        self.node.tick(now)

    def receive(self, src: str, message: Any) -> None:
        if isinstance(message, KvRequest):
            self._serve(src, message)
        elif isinstance(message, ChangeRequest):
            self._change(src, message)
        else:
            self.node.receive(src, message)

    def poll(self) -> Output:
        out = self.node.poll()
        for event in out.events:
            self._answer(event)
        replies, self._replies = self._replies, []
        return Output(persist=out.persist, send=(*out.send, *replies), events=out.events)

    def _serve(self, client: str, request: KvRequest) -> None:
        try:
            if request.f == "read":
                self._next_read += 1
                self.node.read(self._next_read, request.key)
                self._reads[self._next_read] = (client, request.seq)
            else:
                data = wire.encode(request.command())
                index = self.node.propose(data)
                self._proposed[index] = (client, request.seq, data)
        except NotLeader as exc:
            self._replies.append((client, KvReply(request.seq, "redirect", leader_hint=exc.leader_hint)))
        except KeelError:
            self._replies.append((client, KvReply(request.seq, "fail")))

    def _change(self, operator: str, request: ChangeRequest) -> None:
        engine = self.node.engine
        try:
            engine.change_membership(MembershipChange(request.action, request.node))
            outcome = "ok"
        except NotLeader as exc:
            self._replies.append((operator, ChangeReply(request.seq, "redirect", leader_hint=exc.leader_hint)))
            return
        except KeelError:
            outcome = "fail"
        status = engine.status()
        self._replies.append((operator, ChangeReply(request.seq, outcome, status.voters, status.learners)))

    def _answer(self, event: Any) -> None:
        if isinstance(event, Applied):
            mine = self._proposed.pop(event.index, None)
            if mine is not None:
                client, seq, data = mine
                took = event.command == data and event.result is not False
                self._replies.append((client, KvReply(seq, "ok" if took else "fail")))
        elif isinstance(event, ReadServed):
            asked = self._reads.pop(event.request, None)
            if asked is not None:
                self._replies.append((asked[0], KvReply(asked[1], "ok", value=event.value)))
        elif isinstance(event, ReadAbandoned):
            asked = self._reads.pop(event.request, None)
            if asked is not None:
                self._replies.append((asked[0], KvReply(asked[1], "fail")))

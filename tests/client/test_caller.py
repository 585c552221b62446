"""The retry loop against a fake core: same seq everywhere, hints followed, a deadline that ends every call."""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio

from keel.address import Address
from keel.client.caller import Caller
from keel.client.endpoints import parse_endpoints
from keel.client.options import ClientOptions
from keel.client.pool import Pool
from keel.client.routing import Routing
from keel.client.session import Session
from keel.core.api import Call, CoreStatus, CoreStatusReply, Put, PutReply
from keel.errors import NotLeader, SessionExpired, Unavailable
from keel.transport import ClientSettings


class FakeCore:
    """Three nodes sharing one session table; a test scripts who leads, who is down, which reply is lost."""

    def __init__(self) -> None:
        self.ids = {Address("10.0.0.1", 7001 + i): f"c{i + 1}" for i in range(3)}
        self.leader: str | None = "c2"
        self.down: set[str] = set()
        self.seen: list[tuple[str, Call]] = []
        self.applied: dict[tuple[str, int], PutReply] = {}
        self.lose_reply_and_move_to: str | None = None  # the leader applies, the reply is lost, leadership moves
        self.forget_sessions = False  # the leader answers the next request with SessionExpired

    async def connect(self, address: Address, settings: ClientSettings) -> FakeConn:
        await trio.sleep(0.001)
        if self.ids[address] in self.down:
            raise Unavailable(f"{address}: cannot connect")
        return FakeConn(self, self.ids[address])


class FakeConn:
    def __init__(self, core: FakeCore, node: str) -> None:
        self.core = core
        self.node = node

    async def request(self, message: Any, *, timeout: float) -> Any:
        await trio.sleep(0.001)
        core = self.core
        if self.node in core.down:
            raise Unavailable(f"{self.node}: connection failed")
        if isinstance(message, CoreStatus):
            return CoreStatusReply(node_id=self.node, consensus="fake", role="", leader=core.leader, term=1,
                                   commit_index=0, applied_index=0, last_index=0, revision=0, voters=())
        core.seen.append((self.node, message))
        if self.node != core.leader:
            raise NotLeader(core.leader)
        if core.forget_sessions:
            core.forget_sessions = False
            raise SessionExpired(f"session {message.client}: expired (idle or evicted)")
        reply = core.applied.setdefault((message.client, message.seq), PutReply(len(core.applied) + 1))
        if core.lose_reply_and_move_to is not None:
            core.leader, core.lose_reply_and_move_to = core.lose_reply_and_move_to, None
            raise Unavailable(f"{self.node}: connection closed by the node")
        return reply

    async def aclose(self) -> None:
        pass


def _caller(core: FakeCore, *, deadline: float = 10.0) -> Caller:
    routing = Routing(parse_endpoints(list(core.ids)))  # addresses only: the ids are learned
    return Caller(routing=routing, session=Session(), pool=Pool(core.connect, ClientSettings()),
                  options=ClientOptions(deadline=deadline, request_timeout=1.0), rng=random.Random(0))


async def test_a_mutation_keeps_its_seq_across_a_lost_reply_and_a_leader_change(autojump_clock: Any) -> None:
    core = FakeCore()
    core.lose_reply_and_move_to = "c3"
    caller = _caller(core)
    reply = await caller.mutate(Put(b"k", b"v"))
    assert reply == PutReply(1)
    assert len(core.applied) == 1  # applied once although two leaders saw it
    assert [node for node, _ in core.seen] == ["c1", "c2", "c3"]  # follower, then the hint, then the new leader
    assert {(call.client, call.seq) for _, call in core.seen} == {(caller.session.client, 1)}
    assert caller.session.acked == 1


async def test_without_a_leader_the_call_backs_off_until_one_is_elected(autojump_clock: Any) -> None:
    core = FakeCore()
    core.leader = None

    async def elect() -> None:
        await trio.sleep(2.0)
        core.leader = "c1"

    async with trio.open_nursery() as nursery:
        nursery.start_soon(elect)
        reply = await _caller(core).mutate(Put(b"k", b"v"))
    assert reply == PutReply(1)
    assert len(core.seen) < 100  # backed off instead of spinning


async def test_a_call_raises_unavailable_at_its_deadline_when_nothing_answers(autojump_clock: Any) -> None:
    core = FakeCore()
    core.down = {"c1", "c2", "c3"}
    caller = _caller(core, deadline=3.0)
    with trio.fail_after(60):  # the call must end by itself long before this
        with pytest.raises(Unavailable, match="no answer from the core within 3 s"):
            await caller.mutate(Put(b"k", b"v"))
    assert caller.session.acked == 0  # given up, but no session exists at the core to forget it in


async def test_reads_carry_seq_zero_and_the_acked_watermark(autojump_clock: Any) -> None:
    core = FakeCore()
    caller = _caller(core)
    await caller.mutate(Put(b"k", b"v"))
    await caller.read(Put(b"k", b"w"))  # the fake answers anything; what matters is the envelope
    last = core.seen[-1][1]
    assert (last.seq, last.acked) == (0, 1)


async def test_an_expired_session_fails_its_request_and_the_next_starts_a_new_one(autojump_clock: Any) -> None:
    core = FakeCore()
    caller = _caller(core)
    await caller.mutate(Put(b"k", b"1"))
    old = caller.session.client
    core.forget_sessions = True
    with pytest.raises(SessionExpired):
        await caller.mutate(Put(b"k", b"2"))  # may or may not have been applied: the caller must decide
    await caller.mutate(Put(b"k", b"3"))
    last = core.seen[-1][1]
    assert last.client != old
    assert (last.seq, last.acked) == (1, 0)

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
from keel.core.api import Batch, BatchReply, Call, CoreStatus, CoreStatusReply, Put, PutReply
from keel.errors import KeelError, NotLeader, SessionExpired, Unavailable
from keel.transport import ClientSettings, error_reply


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
        self.forget_sessions_after_loss = False  # ... once a reply was lost
        self.hold: trio.Event | None = None  # the leader holds seq 1 until it is set

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
        if isinstance(message, Batch):
            replies = []
            for call in message.calls:  # one after the other: enough for these tests
                try:
                    replies.append(await self.request(call, timeout=timeout))
                except KeelError as exc:
                    replies.append(error_reply(exc))
            return BatchReply(tuple(replies))
        core = self.core
        if self.node in core.down:
            raise Unavailable(f"{self.node}: connection failed")
        if isinstance(message, CoreStatus):
            return CoreStatusReply(node_id=self.node, consensus="fake", role="", leader=core.leader, term=1,
                                   commit_index=0, applied_index=0, last_index=0, revision=0, voters=())
        core.seen.append((self.node, message))
        if self.node != core.leader:
            raise NotLeader(core.leader)
        if core.hold is not None and message.seq == 1:
            await core.hold.wait()
        if core.forget_sessions:
            core.forget_sessions = False
            raise SessionExpired(f"session {message.client}: expired (idle or evicted)")
        reply = core.applied.setdefault((message.client, message.seq), PutReply(len(core.applied) + 1))
        if core.lose_reply_and_move_to is not None:
            core.leader, core.lose_reply_and_move_to = core.lose_reply_and_move_to, None
            core.forget_sessions, core.forget_sessions_after_loss = core.forget_sessions_after_loss, False
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


async def test_a_request_refused_as_of_a_forgotten_session_on_its_first_attempt_goes_again_under_a_new_one(
        autojump_clock: Any) -> None:
    """Nothing of it was applied (the core refused its only attempt), so it is safe to send it again."""
    core = FakeCore()
    caller = _caller(core)
    await caller.mutate(Put(b"k", b"1"))
    old = caller.session.client
    core.forget_sessions = True
    assert await caller.mutate(Put(b"k", b"2")) == PutReply(2)
    last = core.seen[-1][1]
    assert last.client != old and (last.seq, last.acked) == (1, 0)
    assert (old, 2) not in core.applied and (last.client, 1) in core.applied


async def test_a_request_refused_as_of_a_forgotten_session_after_an_attempt_that_may_have_landed_raises(
        autojump_clock: Any) -> None:
    core = FakeCore()
    caller = _caller(core)
    await caller.mutate(Put(b"k", b"1"))
    old = caller.session.client
    core.lose_reply_and_move_to = "c3"  # applied at c2, its reply lost: the retry at c3 finds the session gone
    core.forget_sessions_after_loss = True
    with pytest.raises(SessionExpired):
        await caller.mutate(Put(b"k", b"2"))  # may or may not have been applied: the caller must decide
    await caller.mutate(Put(b"k", b"3"))
    last = core.seen[-1][1]
    assert last.client != old
    assert (last.seq, last.acked) == (1, 0)


async def test_a_request_beyond_the_window_waits_for_an_older_one_to_settle(autojump_clock: Any) -> None:
    """Issue 16: the core keeps the answers of a window of requests; the client never issues beyond it."""
    core = FakeCore()
    core.hold = trio.Event()  # the leader holds the first request until the test lets it go
    caller = _caller(core)
    caller.session = Session(window=3)
    done: list[int] = []

    async def put(i: int) -> None:
        await caller.mutate(Put(b"k", str(i).encode()))
        done.append(i)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(put, 1)
        await trio.sleep(1.0)  # seq 1 is held at the leader
        for i in (2, 3, 4, 5):
            nursery.start_soon(put, i)
            await trio.sleep(0.01)
        await trio.sleep(0.5)
        assert sorted(done) == [2, 3]  # 4 and 5 wait: seq 4 would be 4 above acked 0, beyond the window of 3
        assert max(call.seq for _, call in core.seen) == 3
        core.hold.set()
    assert sorted(done) == [1, 2, 3, 4, 5]
    assert all(call.seq - call.acked <= 3 for _, call in core.seen)


async def test_a_call_waiting_for_room_in_the_window_ends_at_its_deadline(autojump_clock: Any) -> None:
    core = FakeCore()
    core.hold = trio.Event()
    caller = _caller(core, deadline=3.0)
    caller.session = Session(window=1)

    async def held() -> None:
        assert await caller.mutate(Put(b"k", b"held"), deadline=10.0) == PutReply(1)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(held)  # its deadline is the longer
        await trio.sleep(0.5)
        with pytest.raises(Unavailable, match=r"Put: no room within 3 s: 1 earlier requests of this client are "
                                              r"unsettled, and the session's window is 1"):
            await caller.mutate(Put(b"k", b"waits"))
        core.hold.set()

"""Calls that start together travel as one Batch; each still gets its own answer."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from keel.client.batcher import Batcher, batchable
from keel.core.api import Batch, BatchReply, Call, Lock, Put, PutReply, Range, Watch
from keel.errors import LeaseExpired, Unavailable
from keel.transport import ErrorReply, TransportClient


class FakeConn(TransportClient):
    """Answers each put with its key's length as revision; a key b"bad" with an error."""

    def __init__(self, *, broken: bool = False) -> None:
        self.sent: list[Any] = []
        self.broken = broken

    async def request(self, message: Any, *, timeout: float) -> Any:
        self.sent.append(message)
        await trio.sleep(0.01)
        if self.broken:
            raise Unavailable("connection failed")
        if isinstance(message, Batch):
            return BatchReply(tuple(self._answer(call) for call in message.calls))
        answer = self._answer(message)
        if isinstance(answer, ErrorReply):
            raise LeaseExpired(answer.message)
        return answer

    @staticmethod
    def _answer(call: Call) -> Any:
        if call.op.key == b"bad":
            return ErrorReply("lease_expired", "lease 7 does not exist")
        return PutReply(len(call.op.key))

    async def aclose(self) -> None:
        pass


def put(key: bytes, seq: int) -> Call:
    return Call("c", seq, 0, Put(key, b"v"))


async def test_calls_started_together_share_one_batch_and_get_their_own_answers():
    conn = FakeConn()
    batcher = Batcher(conn)
    answers: dict[bytes, Any] = {}

    async def one(key: bytes, seq: int) -> None:
        try:
            answers[key] = await batcher.request(put(key, seq), timeout=1.0)
        except LeaseExpired as exc:
            answers[key] = exc

    async with trio.open_nursery() as nursery:
        for seq, key in enumerate([b"a", b"bb", b"bad", b"cccc"], start=1):
            nursery.start_soon(one, key, seq)
    assert len(conn.sent) == 1 and isinstance(conn.sent[0], Batch) and len(conn.sent[0].calls) == 4
    assert answers[b"a"] == PutReply(1) and answers[b"cccc"] == PutReply(4)
    assert isinstance(answers[b"bad"], LeaseExpired)  # an error goes to its own call, typed


async def test_a_call_alone_travels_alone():
    conn = FakeConn()
    assert await Batcher(conn).request(put(b"a", 1), timeout=1.0) == PutReply(1)
    assert conn.sent == [put(b"a", 1)]


async def test_a_lost_batch_fails_every_call_in_it_as_unavailable():
    batcher = Batcher(FakeConn(broken=True))
    failures = []

    async def one(seq: int) -> None:
        with pytest.raises(Unavailable):
            await batcher.request(put(b"a", seq), timeout=1.0)
        failures.append(seq)

    async with trio.open_nursery() as nursery:
        for seq in (1, 2, 3):
            nursery.start_soon(one, seq)
    assert sorted(failures) == [1, 2, 3]


def test_only_calls_a_node_answers_promptly_are_batched():
    assert batchable(Call("c", 0, 0, Range(b"k")))
    assert not batchable(Call("c", 0, 0, Watch(b"k")))
    assert not batchable(Call("c", 1, 0, Lock(b"n", 1)))


async def test_calls_that_joined_a_batch_whose_sender_was_cancelled_retry_at_once():
    batcher = Batcher(FakeConn())
    outcome: list[str] = []

    async def joiner() -> None:
        with pytest.raises(Unavailable, match="cancelled"):
            await batcher.request(put(b"b", 2), timeout=30.0)
        outcome.append("told")

    with trio.move_on_after(1.0):
        async with trio.open_nursery() as nursery:
            with trio.CancelScope() as sender:
                sender.cancel()  # the sender's deadline runs out while the batch forms
                nursery.start_soon(joiner)
                await batcher.request(put(b"a", 1), timeout=30.0)
    assert outcome == ["told"]

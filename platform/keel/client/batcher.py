"""Calls to one node that start together travel as one `Batch`.

Theory of operation. The first call to arrive while no batch is forming
becomes the batch's sender: it yields once, so every other call started in
the same moment (many tasks of one client writing at once) can join, then
sends them all as one `Batch` request and hands each its own answer. One
frame, one node task and one wake-up then serve many calls; a call alone
goes as it is. Each answer is the call's own (its reply, or its error,
raised with its type); a failed request (the connection broke, no answer
in time) fails every call in it with `Unavailable`, and each retries by
itself as it would have alone.

Only calls the node answers promptly join: watches, locks and campaigns,
which a node may hold, go alone.
"""

from __future__ import annotations

from typing import Any

import attrs
import trio

from keel.core.api import Batch, BatchReply, Call, Campaign, Lock, Watch
from keel.errors import KeelError, Unavailable
from keel.transport import TransportClient, raise_if_error

__all__ = ["Batcher", "batchable"]

MAX_BATCH = 256  # calls in one batch; a frame of them stays far below max_frame


def batchable(message: Any) -> bool:
    """Whether `message` may travel in a batch."""
    return isinstance(message, Call) and not isinstance(message.op, (Watch, Lock, Campaign))


@attrs.define
class _Joined:
    call: Any
    timeout: float
    done: trio.Event = attrs.Factory(trio.Event)
    reply: Any = None
    error: BaseException | None = None


class Batcher:
    """Batches for one connection: core `Call`s in a `Batch` by default, or what `wrap` makes."""

    def __init__(self, conn: TransportClient, *, wrap: Any = None, reply: type = BatchReply) -> None:
        self.conn = conn
        self._wrap = wrap if wrap is not None else (lambda calls: Batch(calls))
        self._reply = reply
        self._forming: list[_Joined] | None = None

    async def request(self, call: Any, *, timeout: float) -> Any:
        """Send `call` (in a batch if others join it) and return its reply; raises its error."""
        joined = _Joined(call, timeout)
        if self._forming is not None and len(self._forming) < MAX_BATCH:
            self._forming.append(joined)
            await joined.done.wait()  # the sender sets it, whatever happens to the batch
        else:
            batch = self._forming = [joined]
            try:
                await trio.lowlevel.checkpoint()  # the others that start now join here
            except BaseException:  # cancelled before sending: those who joined retry at once
                self._forming = None
                _fail(batch[1:], Unavailable("the call that was to send this batch was cancelled; retrying"))
                raise
            self._forming = None
            await self._send(batch, max(j.timeout for j in batch))
        if joined.error is not None:
            raise joined.error
        return joined.reply

    async def _send(self, batch: list[_Joined], timeout: float) -> None:
        try:
            if len(batch) == 1:
                batch[0].reply = await self.conn.request(batch[0].call, timeout=timeout)
                return
            reply = await self.conn.request(self._wrap(tuple(j.call for j in batch)), timeout=timeout)
            if not isinstance(reply, self._reply) or len(reply.replies) != len(batch):
                raise Unavailable(f"a batch of {len(batch)} was answered with {type(reply).__name__}")
            for joined, answer in zip(batch, reply.replies):
                try:
                    joined.reply = raise_if_error(answer)
                except KeelError as exc:
                    joined.error = exc
        except KeelError as exc:
            for joined in batch:
                joined.error = exc
        except BaseException:
            # Cancelled (the sender's own deadline): the others learn the batch is lost and retry.
            _fail(batch, Unavailable("the call that sent this batch was cancelled; retrying"))
            raise
        finally:
            for joined in batch:
                joined.done.set()


def _fail(joined: list[_Joined], error: KeelError) -> None:
    for one in joined:
        one.error = error
        one.done.set()

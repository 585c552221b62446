"""Sending one request to the core: find the leader, follow hints, retry with the same seq until the deadline.

Theory of operation. A call makes attempts until one is answered or the
call's deadline passes. An attempt goes to the node `Routing` picks, with
the request timeout (plus the time the node may hold a watch, lock or
campaign). What ends an attempt decides the next:

- an answer (a reply, or a node's error like `LeaseExpired`) ends the call;
- `NotLeader` with a hint that names a known node: ask it at once (at most
  once per endpoint in a row, so hints that go round in circles back off);
  a hint naming an unknown node id first asks the endpoints who they are;
- `NotLeader` without a usable hint (an election is on) or `Unavailable`
  (no connection, no answer, no quorum): back off, then ask the next node.

A mutating request keeps its session id and seq over all its attempts, so
the core's session table applies it once however many nodes saw it; once
the call ends, answered or not, the seq is settled and never sent again.
A new seq is issued only within the session's window (`Session.room`):
when older requests hold the window, the call waits for one to settle,
and that wait counts against its deadline. `NotLeader` means the node took
nothing; any other failed attempt may still be applied. So when the core
refuses a request with `SessionExpired` and no earlier attempt of it could
have landed, nothing of it was applied, and it is sent again under a new
session; otherwise the call raises `SessionExpired`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

import attrs
import trio

from keel.address import Address
from keel.client.backoff import Backoff
from keel.client.batcher import batchable
from keel.client.options import ClientOptions
from keel.client.pool import Pool
from keel.client.routing import Routing
from keel.client.session import Session
from keel.core.api import Call, CoreStatus, CoreStatusReply
from keel.errors import KeelError, NotLeader, SessionExpired, Unavailable

__all__ = ["Caller"]

log = logging.getLogger("keel.client")


class Caller:
    """Requests to the core over a pool of connections, with retries; see the module doc."""

    def __init__(self, *, routing: Routing, session: Session, pool: Pool, options: ClientOptions,
                 rng: random.Random) -> None:
        self.routing = routing
        self.session = session
        self.pool = pool
        self.options = options
        self._rng = rng
        self._settled = trio.Event()  # set (and replaced) whenever a mutating request settles

    async def mutate(self, op: Any, *, wait: float = 0.0, deadline: float | None = None) -> Any:
        """Send a mutating request (`api.MUTATIONS`) to the leader and return its reply.

        Args:
            op: the request.
            wait: seconds the node may hold it (a lock's or campaign's wait).
            deadline: seconds for the whole call, instead of the options' deadline.

        Raises:
            Unavailable: no answer within the deadline (including the time
                spent waiting for room in the session's window).
            SessionExpired: the core forgot this client's session after an
                attempt of this request that may have been applied; the next
                request starts a new session. (Refused on its first attempt,
                nothing of it was applied: it is sent again under a new session.)
            KeelError: the core's answer was an error (`LeaseExpired`…).
        """
        budget = (self.options.deadline if deadline is None else deadline) + wait
        give_up = trio.current_time() + budget
        while True:
            await self._room(op, give_up, budget)
            client, seq = self.session.begin()
            tries = _Tries()
            answered = False
            try:
                reply = await self._call(lambda: Call(client, seq, self.session.acked_for(client), op), op,
                                         leader=True, wait=wait, give_up=give_up, budget=budget, tries=tries)
                answered = True
                return reply
            except SessionExpired:
                self.session.expired(client)
                if tries.sent > 1:
                    raise  # an earlier attempt may have been applied: only the caller can tell what to do
                log.debug("%s: session %s is gone; sending it again under a new session", type(op).__name__, client)
            except KeelError as exc:
                answered = not isinstance(exc, Unavailable)  # our own give-up, or the core's refusal
                raise
            finally:
                self.session.settle(client, seq, answered=answered)
                self._settled.set()
                self._settled = trio.Event()

    async def _room(self, op: Any, give_up: float, budget: float) -> None:
        """Wait until the session's window lets a new request be issued, up to `give_up`."""
        while not self.session.room():
            with trio.move_on_after(max(0.0, give_up - trio.current_time())):
                await self._settled.wait()
                continue
            raise Unavailable(f"{type(op).__name__}: no room within {budget:g} s: {self.session.unsettled} earlier "
                              f"requests of this client are unsettled, and the session's window is "
                              f"{self.session.window}")

    async def read(self, op: Any, *, leader: bool = True, wait: float = 0.0, deadline: float | None = None) -> Any:
        """Send a request that changes nothing (seq 0): a read, a watch poll, a keep-alive.

        Args:
            leader: only the leader serves it (a linearizable read, a
                keep-alive); False for serializable reads and watches,
                which any node serves.
            wait, deadline: as for `mutate`.

        Raises:
            Unavailable, KeelError: as for `mutate`.
        """
        budget = (self.options.deadline if deadline is None else deadline) + wait
        return await self._call(lambda: Call(self.session.client, 0, self.session.acked, op), op, leader=leader,
                                wait=wait, give_up=trio.current_time() + budget, budget=budget, tries=_Tries())

    async def status(self, address: Address, *, timeout: float) -> CoreStatusReply:
        """What the core node at `address` says about itself.

        Raises:
            Unavailable: it did not answer within `timeout`.
            KeelError: it is not a core node.
        """
        reply = await self._attempt(address, CoreStatus(), timeout=timeout)
        if not isinstance(reply, CoreStatusReply):
            raise KeelError(f"{address}: answered a core status request with {type(reply).__name__}")
        self.routing.learn(reply.node_id, address)
        return reply

    async def _call(self, request: Callable[[], Any], op: Any, *, leader: bool, wait: float, give_up: float,
                    budget: float, tries: _Tries) -> Any:
        backoff = Backoff(self._rng)
        redirects = 0
        last: KeelError | None = None
        while (remaining := give_up - trio.current_time()) > 0:
            address = self.routing.target()
            tries.sent += 1
            try:
                reply = await self._attempt(address, request(),
                                            timeout=min(self.options.request_timeout + wait, remaining))
            except NotLeader as exc:
                tries.sent -= 1  # a node that does not lead took nothing: this attempt cannot land
                last = exc
                if exc.leader_hint is not None and not self.routing.knows(exc.leader_hint):
                    await self._discover(min(self.options.request_timeout, remaining))
                if self.routing.redirect(address, exc.leader_hint) and redirects < len(self.routing.endpoints):
                    redirects += 1
                    continue
            except Unavailable as exc:
                last = exc
                self.routing.failed(address)
            else:
                if leader:
                    self.routing.led_by(address)
                return reply
            log.debug("%s at %s: %s; trying again", type(op).__name__, address, last)
            redirects = 0
            await trio.sleep(min(backoff.next(), max(0.0, give_up - trio.current_time())))
        raise Unavailable(f"{type(op).__name__}: no answer from the core within {budget:g} s "
                          f"(last error: {last or 'none'})")

    async def _attempt(self, address: Address, message: Any, *, timeout: float) -> Any:
        with trio.move_on_after(timeout):
            if batchable(message):  # calls started together share one request (see `batcher`)
                batcher = await self.pool.batcher(address)
                try:
                    return await batcher.request(message, timeout=timeout)
                except Unavailable:
                    await self.pool.drop(address, batcher.conn)
                    raise
            conn = await self.pool.get(address)
            try:
                return await conn.request(message, timeout=timeout)
            except Unavailable:
                await self.pool.drop(address, conn)
                raise
        raise Unavailable(f"{address}: no answer within {timeout:g} s")

    async def _discover(self, timeout: float) -> None:
        """Ask the endpoints whose node id is unknown who they are."""

        async def ask(address: Address) -> None:
            try:
                await self.status(address, timeout=timeout)
            except KeelError as exc:
                log.debug("%s: no core status: %s", address, exc)

        async with trio.open_nursery() as nursery:
            for address in self.routing.unnamed():
                nursery.start_soon(ask, address)


@attrs.define
class _Tries:
    """How many attempts of one call may have been taken by a node (all but those refused with NotLeader)."""

    sent: int = 0

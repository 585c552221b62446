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
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

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

    async def mutate(self, op: Any, *, wait: float = 0.0, deadline: float | None = None) -> Any:
        """Send a mutating request (`api.MUTATIONS`) to the leader and return its reply.

        Args:
            op: the request.
            wait: seconds the node may hold it (a lock's or campaign's wait).
            deadline: seconds for the whole call, instead of the options' deadline.

        Raises:
            Unavailable: no answer within the deadline.
            SessionExpired: the core forgot this client's session, so whether
                an earlier attempt of this request was applied is unknown; the
                next request starts a new session.
            KeelError: the core's answer was an error (`LeaseExpired`…).
        """
        client, seq = self.session.begin()
        answered = False
        try:
            reply = await self._call(lambda: Call(client, seq, self.session.acked_for(client), op), op,
                                     leader=True, wait=wait, deadline=deadline)
            answered = True
            return reply
        except SessionExpired:
            self.session.expired(client)  # this request's fate is unknown; the next ones start a new session
            raise
        except KeelError as exc:
            answered = not isinstance(exc, Unavailable)  # our own give-up, or the core's refusal
            raise
        finally:
            self.session.settle(client, seq, answered=answered)

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
        return await self._call(lambda: Call(self.session.client, 0, self.session.acked, op), op,
                                leader=leader, wait=wait, deadline=deadline)

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

    async def _call(self, request: Callable[[], Any], op: Any, *, leader: bool, wait: float,
                    deadline: float | None) -> Any:
        budget = (self.options.deadline if deadline is None else deadline) + wait
        give_up = trio.current_time() + budget
        backoff = Backoff(self._rng)
        redirects = 0
        last: KeelError | None = None
        while (remaining := give_up - trio.current_time()) > 0:
            address = self.routing.target()
            try:
                reply = await self._attempt(address, request(),
                                            timeout=min(self.options.request_timeout + wait, remaining))
            except NotLeader as exc:
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

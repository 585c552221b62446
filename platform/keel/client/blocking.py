"""The blocking client: `keel.Client(endpoints)`, the async client's calls for code that is not async.

Each call runs the async client in a `trio.run` of its own (keel runs no
threads and no asyncio), which shapes what it can promise:

- every call opens its connections afresh: fine for scripts and tools, a
  few milliseconds per call on a LAN; use `keel.connect` for throughput;
- what must outlive a call is plain data kept here: the session (its id,
  seq counter and acked watermark, so a retried write is still applied
  once), what was learned about the leader and the node ids, a watch's
  revision, an observer's leader;
- **nothing runs between calls**, so nothing keeps a lease alive then. A
  lease of this client (and so a lock or a candidacy) is refreshed only
  while the program calls it: each call first refreshes every lease that
  is due (a third of its ttl passed), keeps them alive while it runs (a
  long lock wait or `next()` on a watch), and `keepalive()` does nothing
  else. A program that leaves the client alone for longer than a ttl loses
  the lease; leaving its `with` block then raises `LeaseExpired`;
- it cannot be called from inside a running Trio (or asyncio) loop; there,
  use `keel.connect`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import trio

from keel.client.async_client import DEFAULT_LOCK_TTL_S, AsyncClient, open_client
from keel.client.election import DEFAULT_ELECTION_TTL_S, LeaderCursor, next_leader
from keel.client.encoding import BytesLike, as_bytes, lease_id
from keel.client.endpoints import EndpointLike, parse_endpoints
from keel.client.lease import KEEPALIVE_FRACTION, refresh
from keel.client.lock import campaign, lock
from keel.client.options import DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_DEADLINE_S, DEFAULT_REQUEST_TIMEOUT_S, ClientOptions
from keel.client.routing import Routing
from keel.client.session import Session
from keel.client.watch import WatchCursor, poll
from keel.core.api import (
    CampaignReply, CompactReply, Compare, CoreStatusReply, DeleteReply, Event, KeyValue, LeaseGrant, LeaseRevoke,
    PutReply, RangeReply, Resign, TxnReply, Unlock,
)
from keel.errors import KeelError, LeaseExpired, Unavailable
from keel.transport import ClientSettings

__all__ = ["BlockingElection", "BlockingLease", "BlockingObserver", "BlockingWatch", "Client"]

log = logging.getLogger("keel.client")

T = TypeVar("T")
KEEPER_NAP_S = 1.0  # seconds the in-call keeper sleeps at most, so a lease granted meanwhile is seen soon


class BlockingLease:
    """A lease of a blocking `Client`; its times are on `time.monotonic`.

    Attributes:
        id, ttl: as the core granted it.
        error: the `LeaseExpired` that ended it, once lost.
    """

    def __init__(self, client: Client, id: int, ttl: float, *, confirmed_at: float) -> None:
        self._client = client
        self.id = id
        self.ttl = ttl
        self.confirmed_at = confirmed_at
        self.error: LeaseExpired | None = None

    def __repr__(self) -> str:
        return f"BlockingLease(id={self.id}, ttl={self.ttl:g}, {'lost' if self.lost else 'alive'})"

    @property
    def lost(self) -> bool:
        return self.error is not None

    @property
    def deadline(self) -> float:
        """`time.monotonic()` until which the lease is surely alive."""
        return self.confirmed_at + self.ttl

    def due(self, now: float) -> bool:
        return self.error is None and now >= self.confirmed_at + self.ttl * KEEPALIVE_FRACTION

    def lose(self, error: LeaseExpired) -> None:
        if self.error is None:
            self.error = error

    def check(self) -> None:
        """Raise the `LeaseExpired` that ended the lease, if it ended."""
        if self.error is not None:
            raise self.error

    def keepalive(self) -> None:
        """Refresh this lease now.

        Raises:
            LeaseExpired: it is gone, or could not be confirmed within its ttl.
        """
        self.check()
        self._client._run(lambda c: refresh(c.caller, self, clock=time.monotonic))
        self.check()


class BlockingWatch:
    """A blocking iterator of `Event`s: each `next()` waits for the next one (Ctrl-C interrupts)."""

    def __init__(self, client: Client, cursor: WatchCursor) -> None:
        self._client = client
        self.cursor = cursor

    @property
    def next_revision(self) -> int:
        return self.cursor.next_revision

    def __iter__(self) -> BlockingWatch:
        return self

    def __next__(self) -> Event:
        if not self.cursor.pending:
            self._client._run(self._fill)
        return self.cursor.pending.popleft()

    async def _fill(self, c: AsyncClient) -> None:
        while not self.cursor.pending:
            await poll(c.caller, self.cursor)


class BlockingObserver:
    """A blocking iterator of an election's leaders: the leader now, then each new one."""

    def __init__(self, client: Client, cursor: LeaderCursor) -> None:
        self._client = client
        self.cursor = cursor

    def __iter__(self) -> BlockingObserver:
        return self

    def __next__(self) -> KeyValue | None:
        return self._client._run(lambda c: next_leader(c.caller, self.cursor))


class BlockingElection:
    """Election `name` for a blocking client; the candidacy's lease is kept alive as the module doc says."""

    def __init__(self, client: Client, name: BytesLike) -> None:
        self._client = client
        self.name = as_bytes(name, "election name")
        self.key: bytes | None = None
        self.lease: BlockingLease | None = None

    def campaign(self, value: BytesLike, *, ttl: float = DEFAULT_ELECTION_TTL_S,
                 timeout: float | None = None) -> CampaignReply:
        """Stand with `value`; return once elected.

        Raises:
            Unavailable: not elected within `timeout` seconds (None: wait as long as it takes).
            LeaseExpired, KeelError: as for `Election.campaign`.
        """
        if self.lease is not None:
            raise KeelError(f"election {self.name!r}: already campaigning here; resign first")
        lease = self._client.grant_lease(ttl)
        what = f"campaign {self.name!r}"
        try:
            reply = self._client._run(lambda c: _bounded(campaign(c.caller, self.name, lease, as_bytes(value)),
                                                         timeout, what))
        except BaseException:
            self._client._end(lease, quiet=True)
            raise
        self.key, self.lease = reply.key, lease
        return reply

    def resign(self) -> None:
        """Give up the candidacy and its lease. Nothing happens when there is none."""
        key, lease = self.key, self.lease
        self.key = self.lease = None
        if key is not None and lease is not None:
            self._client._end(lease, release=Resign(key), quiet=True)

    def leader(self) -> KeyValue | None:
        """The leading candidacy, None when nobody stands."""
        cursor = LeaderCursor(self.name)
        return self._client._run(lambda c: next_leader(c.caller, cursor))

    def observe(self) -> BlockingObserver:
        return BlockingObserver(self._client, LeaderCursor(self.name))


async def _bounded(awaitable: Awaitable[T], timeout: float | None, what: str) -> T:
    if timeout is None:
        return await awaitable
    with trio.move_on_after(timeout):
        return await awaitable
    raise Unavailable(f"{what}: not done within {timeout:g} s")


class Client:
    """The core for code that is not async; see the module doc for what a blocking client can promise.

    Same arguments as `keel.connect`. Use it as a context manager (or call
    `close()`) to revoke the leases it still keeps.
    """

    def __init__(self, endpoints: str | Sequence[EndpointLike], *, transport: str = "tcp",
                 request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S, deadline: float = DEFAULT_DEADLINE_S,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S, settings: ClientSettings | None = None) -> None:
        from keel import plugins  # noqa: PLC0415 - loading plugins costs; only a client pays
        from keel.contract import Kind  # noqa: PLC0415

        self._options = ClientOptions(transport=transport, request_timeout=request_timeout, deadline=deadline,
                                      connect_timeout=connect_timeout)
        self._routing = Routing(parse_endpoints(endpoints))
        self._session = Session()
        self._connect = plugins.load().get(Kind.TRANSPORT, self._options.transport, field="transport").connect
        self._settings = settings or ClientSettings(connect_timeout=self._options.connect_timeout)
        self._leases: dict[int, BlockingLease] = {}  # the leases this client keeps alive while called

    @property
    def client_id(self) -> str:
        return self._session.client

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Revoke the leases this client still keeps (best effort)."""
        for lease in list(self._leases.values()):
            self._end(lease, quiet=True)

    # --- keys ------------------------------------------------------------------------------

    def put(self, key: BytesLike, value: BytesLike, *, lease: object = None, prev_kv: bool = False) -> PutReply:
        return self._run(lambda c: c.put(key, value, lease=lease_id(lease), prev_kv=prev_kv))

    def get(self, key: BytesLike, *, serializable: bool = False) -> KeyValue | None:
        return self._run(lambda c: c.get(key, serializable=serializable))

    def range(self, prefix: BytesLike, *, limit: int = 0, keys_only: bool = False,
              serializable: bool = False) -> RangeReply:
        return self._run(lambda c: c.range(prefix, limit=limit, keys_only=keys_only, serializable=serializable))

    def delete(self, key: BytesLike, *, prefix: bool = False, prev_kv: bool = False) -> DeleteReply:
        return self._run(lambda c: c.delete(key, prefix=prefix, prev_kv=prev_kv))

    def cas(self, key: BytesLike, expected: BytesLike | None, new: BytesLike, *, lease: object = None) -> bool:
        return self._run(lambda c: c.cas(key, expected, new, lease=lease_id(lease)))

    def txn(self, compare: Sequence[Compare] = (), success: Sequence[Any] = (),
            failure: Sequence[Any] = ()) -> TxnReply:
        return self._run(lambda c: c.txn(compare, success, failure))

    def compact(self, revision: int) -> CompactReply:
        return self._run(lambda c: c.compact(revision))

    def watch(self, key: BytesLike, *, prefix: bool = False, start_revision: int = 0) -> BlockingWatch:
        """A blocking iterator of every change to `key` (or under it), once each, in order."""
        if start_revision < 0:
            raise ValueError(f"watch: start_revision {start_revision} is below 0")
        return BlockingWatch(self, WatchCursor(as_bytes(key, "key"), prefix, start_revision))

    # --- leases, locks, elections ------------------------------------------------------------------

    def grant_lease(self, ttl: float, *, keep_alive: bool = True) -> BlockingLease:
        """A new lease of `ttl` seconds; with `keep_alive`, refreshed by this client's calls (see the module doc)."""
        if not ttl > 0:
            raise ValueError(f"lease ttl {ttl!r} is not above 0")
        sent = time.monotonic()
        reply = self._run(lambda c: c.caller.mutate(LeaseGrant(float(ttl))))
        lease = BlockingLease(self, reply.id, reply.ttl, confirmed_at=sent)
        if keep_alive:
            self._leases[lease.id] = lease
        return lease

    def revoke_lease(self, lease: object, *, missing_ok: bool = False) -> None:
        """End a lease and delete its keys.

        Raises:
            LeaseExpired: it was already gone (unless `missing_ok`).
        """
        self._leases.pop(lease_id(lease), None)
        self._run(lambda c: c.revoke_lease(lease_id(lease), missing_ok=missing_ok))

    def keepalive(self) -> None:
        """Refresh every lease of this client that is due; call it when idle for a third of a ttl."""
        self._run(_nothing)

    @contextmanager
    def lease(self, ttl: float) -> Iterator[BlockingLease]:
        """A lease refreshed by this client's calls while the block runs, revoked at its end.

        Raises:
            LeaseExpired: on leaving the block, if the lease was lost meanwhile.
        """
        lease = self.grant_lease(ttl)
        try:
            yield lease
        except BaseException:
            self._end(lease, quiet=True)
            raise
        self._end(lease)

    @contextmanager
    def lock(self, name: BytesLike, *, ttl: float = DEFAULT_LOCK_TTL_S, timeout: float | None = None) -> Iterator[int]:
        """Hold lock `name` while the block runs; yields the fencing token.

        The lock's lease is refreshed only by this client's calls: call
        `keepalive()` (or anything else) more often than `ttl / 3` while holding it.

        Raises:
            Unavailable: not acquired within `timeout` seconds (None: wait as long as it takes).
            LeaseExpired: on leaving the block, if the lock's lease was lost
                meanwhile (another may have held the lock since).
        """
        name_bytes = as_bytes(name, "lock name")
        lease = self.grant_lease(ttl)
        try:
            held = self._run(lambda c: _bounded(lock(c.caller, name_bytes, lease), timeout, f"lock {name_bytes!r}"))
        except BaseException:
            self._end(lease, quiet=True)
            raise
        try:
            yield held.token
        except BaseException:
            self._end(lease, release=Unlock(held.key), quiet=True)
            raise
        self._end(lease, release=Unlock(held.key))

    def election(self, name: BytesLike) -> BlockingElection:
        return BlockingElection(self, name)

    def node_status(self) -> list[CoreStatusReply]:
        """What each endpoint that answers in time says about itself."""
        return self._run(lambda c: c.node_status())

    # --- running ----------------------------------------------------------------------------------

    def _end(self, lease: BlockingLease, *, release: Any = None, quiet: bool = False) -> None:
        """Stop keeping `lease`, send `release` (an Unlock or Resign) and revoke it; `quiet`: raise nothing."""
        self._leases.pop(lease.id, None)

        async def end(c: AsyncClient) -> None:
            if lease.error is not None:
                return
            if release is not None:
                try:
                    await c.caller.mutate(release)
                except KeelError as exc:
                    log.warning("%s: %s; revoking the lease releases it", type(release).__name__, exc)
            try:
                await c.caller.mutate(LeaseRevoke(lease.id))
            except LeaseExpired as exc:
                lease.lose(exc)

        try:
            self._run(end)
        except KeelError as exc:
            if not quiet:
                raise
            log.warning("lease %d: not revoked (%s); it ends by itself within %g s", lease.id, exc, lease.ttl)
        if not quiet:
            lease.check()

    def _run(self, call: Callable[[AsyncClient], Awaitable[T]]) -> T:
        return trio.run(self._within, call)

    async def _within(self, call: Callable[[AsyncClient], Awaitable[T]]) -> T:
        async with open_client(routing=self._routing, session=self._session, connect=self._connect,
                               settings=self._settings, options=self._options, background=self._keep) as c:
            return await call(c)

    async def _keep(self, c: AsyncClient, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Refresh the leases that are due, let the call start, and go on refreshing each when it falls due."""
        started = False
        while True:
            now = time.monotonic()
            for lease in [lease for lease in self._leases.values() if lease.due(now)]:
                await refresh(c.caller, lease, clock=time.monotonic)
            if not started:
                task_status.started()
                started = True
            due = [lease.confirmed_at + lease.ttl * KEEPALIVE_FRACTION for lease in self._leases.values()
                   if lease.error is None]
            await trio.sleep(max(0.0, min([*due, now + KEEPER_NAP_S]) - time.monotonic()))


async def _nothing(c: AsyncClient) -> None:
    """A call that only refreshes the due leases, which every call does first."""

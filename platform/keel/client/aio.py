"""The asyncio door: `async with keel.aio.connect(endpoints) as c:`, the same calls as awaitables.

No asyncio rewrite of the client: an `AioClient` starts the same background
thread as `keel.Client` (`keel.client.handle`), one Trio loop holding the
async client, and each call is handed to it; the asyncio task awaits the
answer (a `concurrent.futures.Future` wrapped for asyncio) and the asyncio
loop goes on running other tasks meanwhile. Connections, session, batcher
and lease keep-alives live in that loop, as for the blocking client.
Cancelling the awaiting task (`asyncio.timeout`, `task.cancel()`)
cancels the call in the loop; a lock or campaign given up so revokes its
lease. Errors and deadlines are the async client's. Lease listeners run in
the asyncio loop (`call_soon_threadsafe`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from keel.client.async_client import DEFAULT_LOCK_TTL_S, ClientSetup
from keel.client.election import DEFAULT_ELECTION_TTL_S, LeaderObserver
from keel.client.data import DEFAULT_DATA_TIMEOUT_S
from keel.client.encoding import BytesLike, as_bytes, lease_id
from keel.client.endpoints import EndpointLike
from keel.client.handle import ClientHandle, LeaseListener
from keel.client.lease_view import LeaseView
from keel.client.options import DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_DEADLINE_S, DEFAULT_REQUEST_TIMEOUT_S
from keel.client.portal import CLOSE_TIMEOUT_S
from keel.client.streams import Stream
from keel.core.api import (
    CampaignReply, CompactReply, Compare, CoreStatusReply, DeleteReply, Event, KeyValue, PutReply, RangeReply,
    Resign, TxnReply, Unlock,
)
from keel.data.bucket import DEFAULT_BUCKET, BucketSpec, check_bucket_name
from keel.errors import KeelError
from keel.transport import ClientSettings

__all__ = ["AioClient", "AioElection", "AioLease", "AioObserver", "AioWatch", "connect"]

log = logging.getLogger("keel.client")

T = TypeVar("T")
_numbers = itertools.count(1)  # names the clients' threads apart


class AioLease(LeaseView):
    """A lease of an `AioClient`, kept alive by its loop until revoked; see `LeaseView`."""

    async def keepalive(self) -> None:
        """Refresh this lease now (the loop does it every ttl/3 anyway).

        Raises:
            LeaseExpired: it is gone, or could not be confirmed within its ttl.
        """
        self.check()
        await self._handle.refresh(self)
        self.check()

    async def revoke(self, *, missing_ok: bool = False) -> None:
        """End the lease and delete its keys.

        Raises:
            LeaseExpired: it was already gone (unless `missing_ok`).
        """
        await self._handle.revoke(self, missing_ok=missing_ok)


class AioWatch:
    """An async iterator of `Event`s on a key or prefix, once each, in order."""

    def __init__(self, handle: ClientHandle, key: BytesLike, prefix: bool, start_revision: int) -> None:
        self._watcher = handle.client.watch(key, prefix=prefix, start_revision=start_revision)  # plain data
        self._stream = Stream(handle, self._watcher.__anext__)

    @property
    def next_revision(self) -> int:
        return self._watcher.next_revision

    async def start(self) -> int:
        """Begin now rather than at the first poll; the revision the events start from."""
        return await self._stream.run(self._watcher.start)

    def __aiter__(self) -> AioWatch:
        return self

    async def __anext__(self) -> Event:
        return await self._stream.next()


class AioObserver:
    """An async iterator of an election's leaders: the leader now, then each new one."""

    def __init__(self, handle: ClientHandle, name: bytes) -> None:
        self._stream = Stream(handle, LeaderObserver(handle.client.caller, name).__anext__)

    def __aiter__(self) -> AioObserver:
        return self

    async def __anext__(self) -> KeyValue | None:
        return await self._stream.next()


class AioElection:
    """Election `name` for an asyncio client: the candidacy's lease is kept alive by the client's loop."""

    def __init__(self, client: AioClient, name: BytesLike) -> None:
        self._client = client
        self.name = as_bytes(name, "election name")
        self.key: bytes | None = None
        self.lease: AioLease | None = None

    async def campaign(self, value: BytesLike, *, ttl: float = DEFAULT_ELECTION_TTL_S,
                       timeout: float | None = None) -> CampaignReply:
        """Stand with `value`; return once elected.

        Raises:
            Unavailable: not elected within `timeout` seconds (None: wait as long as it takes).
            LeaseExpired, KeelError: as for `Election.campaign`.
        """
        if self.lease is not None:
            raise KeelError(f"election {self.name!r}: already campaigning here; resign first")
        view, reply = await self._client._handle.campaign(self.name, as_bytes(value), ttl=ttl, timeout=timeout)
        assert isinstance(view, AioLease)
        self.key, self.lease = reply.key, view
        return reply

    async def resign(self) -> None:
        """Give up the candidacy and its lease. Nothing happens when there is none."""
        key, lease = self.key, self.lease
        self.key = self.lease = None
        if key is not None and lease is not None:
            await self._client._end(lease, release=Resign(key), quiet=True)

    async def leader(self) -> KeyValue | None:
        """The leading candidacy, None when nobody stands."""
        return await self._client._handle.call(lambda c: c.election(self.name).leader())

    def observe(self) -> AioObserver:
        return AioObserver(self._client._handle, self.name)


class AioBucket:
    """A bucket of the data cluster for asyncio code; `AioClient.bucket(name)` makes one."""

    def __init__(self, handle: ClientHandle, name: str, timeout: float) -> None:
        self._handle = handle
        self.name = name
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"AioBucket({self.name!r})"

    async def put(self, key: BytesLike, value: BytesLike, *, n: int = 0, w: int = 0,
                  timeout: float | None = None) -> None:
        """Store `value` under `key`; returns once `w` replicas hold it durably."""
        await self.call("put", key, as_bytes(value), n=n, w=w, timeout=timeout)

    async def get(self, key: BytesLike, *, n: int = 0, r: int = 0, timeout: float | None = None) -> bytes | None:
        """The value under `key` merged from `r` replicas; None when absent or deleted."""
        return await self.call("get", key, n=n, r=r, timeout=timeout)

    async def delete(self, key: BytesLike, *, n: int = 0, w: int = 0, timeout: float | None = None) -> None:
        """Delete `key` (a tombstone that replicates like a value)."""
        await self.call("delete", key, n=n, w=w, timeout=timeout)

    async def call(self, op: str, key: BytesLike, *args: Any, n: int = 0, r: int = 0, w: int = 0,
                   timeout: float | None = None) -> Any:
        """Any operation of the bucket's store on `key`; its result."""
        return await self._handle.call(lambda c: c.bucket(self.name, timeout=self._timeout).call(
            op, key, *args, n=n, r=r, w=w, timeout=timeout))


class AioClient:
    """The core for asyncio programs; make one with `keel.aio.connect`. See the module doc."""

    def __init__(self, handle: ClientHandle) -> None:
        self._handle = handle
        self._listeners: dict[LeaseListener, LeaseListener] = {}  # the program's, by the wrapper given to the loop
        # Closes the client when the program drops it or exits without `aclose()`; holds no reference to it.
        self._finalizer = weakref.finalize(self, handle.close)

    @classmethod
    async def open(cls, endpoints: str | Sequence[EndpointLike], *, transport: str = "tcp",
                   request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S, deadline: float = DEFAULT_DEADLINE_S,
                   connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
                   settings: ClientSettings | None = None) -> AioClient:
        """Start the client's loop thread (without blocking the asyncio loop); `aclose()` it when done.

        Raises:
            ConfigError: bad endpoints, or an unknown transport.
        """

        def start() -> ClientHandle:
            setup = ClientSetup.of(endpoints, transport=transport, request_timeout=request_timeout,
                                   deadline=deadline, connect_timeout=connect_timeout, settings=settings)
            return ClientHandle.start(setup, make_lease=AioLease, name=f"keel-aio-client-{next(_numbers)}")

        return cls(await asyncio.to_thread(start))

    @property
    def client_id(self) -> str:
        """This client's session id (random): with a seq, what makes a retried write idempotent."""
        return self._handle.client_id

    async def aclose(self) -> None:
        """Revoke the leases this client keeps and end its threads; calls still running fail. Idempotent."""
        if not self._finalizer.detach():
            return
        self._handle.request_close()
        try:
            await asyncio.wait_for(asyncio.wrap_future(self._handle.portal.finished), CLOSE_TIMEOUT_S)
        except TimeoutError:
            log.warning("keel.aio: the client's loop did not end within %g s; leaving it to the interpreter",
                        CLOSE_TIMEOUT_S)

    async def __aenter__(self) -> AioClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- buckets (the data cluster) ---------------------------------------------------------

    def bucket(self, name: str = DEFAULT_BUCKET, *, timeout: float = DEFAULT_DATA_TIMEOUT_S) -> AioBucket:
        """The data cluster's bucket `name` (see `keel.client.data`); `timeout`: seconds a data node waits for replicas."""
        return AioBucket(self._handle, check_bucket_name(name), timeout)

    async def create_bucket(self, name: str, *, store: str = "lww", options: dict[str, Any] | None = None,
                            n: int = 3, r: int = 2, w: int = 2) -> BucketSpec:
        """Add a bucket to the core's bucket table (the same settings again change nothing)."""
        return await self._handle.call(lambda c: c.create_bucket(name, store=store, options=options, n=n, r=r, w=w))

    async def buckets(self) -> list[BucketSpec]:
        """Every bucket of the core's bucket table, by name."""
        return await self._handle.call(lambda c: c.buckets())

    # --- keys ------------------------------------------------------------------------------

    async def put(self, key: BytesLike, value: BytesLike, *, lease: object = None,
                  prev_kv: bool = False) -> PutReply:
        """Set `key` to `value`, attached to `lease` if given; `prev_kv` returns the old key."""
        number = lease_id(lease)
        return await self._handle.call(lambda c: c.put(key, value, lease=number, prev_kv=prev_kv))

    async def get(self, key: BytesLike, *, serializable: bool = False) -> KeyValue | None:
        """The key, or None when absent; linearizable unless `serializable`."""
        return await self._handle.call(lambda c: c.get(key, serializable=serializable))

    async def range(self, prefix: BytesLike, *, limit: int = 0, keys_only: bool = False,
                    serializable: bool = False) -> RangeReply:
        """The keys starting with `prefix`, in key order: at most `limit` (0: all)."""
        return await self._handle.call(lambda c: c.range(prefix, limit=limit, keys_only=keys_only,
                                                         serializable=serializable))

    async def delete(self, key: BytesLike, *, prefix: bool = False, prev_kv: bool = False) -> DeleteReply:
        """Delete `key` (every key starting with it when `prefix`)."""
        return await self._handle.call(lambda c: c.delete(key, prefix=prefix, prev_kv=prev_kv))

    async def cas(self, key: BytesLike, expected: BytesLike | None, new: BytesLike, *, lease: object = None) -> bool:
        """Set `key` to `new` if its value is `expected` (None: if it is absent); whether it did."""
        number = lease_id(lease)
        return await self._handle.call(lambda c: c.cas(key, expected, new, lease=number))

    async def txn(self, compare: Sequence[Compare] = (), success: Sequence[Any] = (),
                  failure: Sequence[Any] = ()) -> TxnReply:
        """If every compare holds run `success`, else `failure`; all at one revision."""
        return await self._handle.call(lambda c: c.txn(compare, success, failure))

    async def compact(self, revision: int) -> CompactReply:
        """Forget the history up to `revision`."""
        return await self._handle.call(lambda c: c.compact(revision))

    def watch(self, key: BytesLike, *, prefix: bool = False, start_revision: int = 0) -> AioWatch:
        """An async iterator of every change to `key` (or under it), once each, in order.

        From `start_revision`; 0: the changes after its first poll (or `await watch.start()`).
        """
        if start_revision < 0:
            raise ValueError(f"watch: start_revision {start_revision} is below 0")
        return AioWatch(self._handle, key, prefix, start_revision)

    # --- leases, locks, elections ------------------------------------------------------------------

    async def grant_lease(self, ttl: float, *, keep_alive: bool = True) -> AioLease:
        """A new lease of `ttl` seconds, kept alive by the client's loop until revoked (unless not `keep_alive`)."""
        lease = await self._handle.grant(ttl, keep_alive=keep_alive)
        assert isinstance(lease, AioLease)
        return lease

    async def revoke_lease(self, lease: object, *, missing_ok: bool = False) -> None:
        """End a lease (an `AioLease` or an id) and delete its keys.

        Raises:
            LeaseExpired: it was already gone (unless `missing_ok`).
        """
        await self._handle.revoke(lease, missing_ok=missing_ok)

    async def keepalive(self, lease: object = None) -> None:
        """Refresh `lease` now, or every lease this client keeps when None; the loop does it every ttl/3 anyway."""
        if isinstance(lease, AioLease):
            await lease.keepalive()
        elif lease is None:
            await self._handle.refresh_all()
        else:
            number = lease_id(lease)
            await self._handle.call(lambda c: c.keepalive(number))

    def add_lease_listener(self, listener: LeaseListener) -> None:
        """Call `listener(lease)` in this asyncio loop when a lease of this client is lost.

        The next call of the client also raises `LeaseExpired` for it, once.
        """
        loop = asyncio.get_running_loop()

        def wrapper(view: LeaseView) -> None:
            loop.call_soon_threadsafe(listener, view)

        self._listeners[listener] = wrapper
        self._handle.add_lease_listener(wrapper)

    def remove_lease_listener(self, listener: LeaseListener) -> None:
        wrapper = self._listeners.pop(listener, None)
        if wrapper is not None:
            self._handle.remove_lease_listener(wrapper)

    @asynccontextmanager
    async def lease(self, ttl: float) -> AsyncIterator[AioLease]:
        """A lease kept alive while the block runs, revoked at its end.

        Raises:
            LeaseExpired: on leaving the block, if the lease was lost meanwhile.
        """
        lease = await self.grant_lease(ttl)
        try:
            yield lease
        except BaseException:
            await self._end(lease, quiet=True)
            raise
        await self._end(lease)

    @asynccontextmanager
    async def lock(self, name: BytesLike, *, ttl: float = DEFAULT_LOCK_TTL_S,
                   timeout: float | None = None) -> AsyncIterator[int]:
        """Hold lock `name` while the block runs; yields the fencing token (it only grows).

        Raises:
            Unavailable: not acquired within `timeout` seconds (None: wait
                as long as it takes; `asyncio.timeout` works too).
            LeaseExpired: the lock's lease was lost while the block ran:
                raised by the block's next call of this client, and on leaving it.
        """
        lease, held = await self._handle.acquire_lock(as_bytes(name, "lock name"), ttl=ttl, timeout=timeout)
        try:
            yield held.token
        except BaseException:
            await self._end(lease, release=Unlock(held.key), quiet=True)
            raise
        await self._end(lease, release=Unlock(held.key))

    def election(self, name: BytesLike) -> AioElection:
        """Election `name`: `campaign`, `leader`, `observe`, `resign`."""
        return AioElection(self, name)

    async def node_status(self) -> list[CoreStatusReply]:
        """What each endpoint that answers in time says about itself."""
        return await self._handle.call(lambda c: c.node_status())

    async def _end(self, lease: LeaseView, *, release: Any = None, quiet: bool = False) -> None:
        try:
            await self._handle.end(lease, release=release)
        except KeelError as exc:
            if not quiet:
                raise
            log.warning("lease %d: not revoked (%s); it ends by itself within %g s", lease.id, exc, lease.ttl)
        if not quiet:
            lease.check()


@asynccontextmanager
async def connect(endpoints: str | Sequence[EndpointLike], *, transport: str = "tcp",
                  request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S, deadline: float = DEFAULT_DEADLINE_S,
                  connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
                  settings: ClientSettings | None = None) -> AsyncIterator[AioClient]:
    """Connect to the core from asyncio: `async with keel.aio.connect(["127.0.0.1:7101", …]) as c:`.

    The arguments are `keel.connect`'s. Leaving the block revokes the
    client's leases and ends its thread.

    Raises:
        ConfigError: bad endpoints, or an unknown transport.
    """
    client = await AioClient.open(endpoints, transport=transport, request_timeout=request_timeout,
                                  deadline=deadline, connect_timeout=connect_timeout, settings=settings)
    try:
        yield client
    finally:
        await client.aclose()

"""The async client: `async with keel.connect(endpoints) as c:` and every call of the core.

The client owns a nursery for its background work (lease keep-alives) and
a pool of connections; leaving the `async with` revokes the leases it
keeps alive, ends that work and closes the connections. Every call finds
the leader itself, retries across leader changes with the same session
seq until its deadline, and raises a typed error: `Unavailable` when the
core did not answer in time, or the core's own (`LeaseExpired`,
`Compacted`, `KeelError`).
"""

from __future__ import annotations

import contextlib
import logging
import random
import secrets
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import attrs
import trio

from keel.client.caller import Caller
from keel.client.election import Election
from keel.client.encoding import BytesLike, as_bytes, lease_id
from keel.client.endpoints import EndpointLike, parse_endpoints
from keel.client.lease import REVOKE_GRACE_S, Lease
from keel.client.lock import lock as acquire
from keel.client.options import DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_DEADLINE_S, DEFAULT_REQUEST_TIMEOUT_S, ClientOptions
from keel.client.pool import Pool
from keel.client.routing import Routing
from keel.client.session import Session
from keel.client.txn import absent, compare_value, put_op
from keel.client.watch import Watcher, WatchCursor
from keel.core.api import (
    Compact, CompactReply, Compare, CoreStatusReply, Delete, DeleteReply, KeyValue, LeaseGrant, LeaseGrantReply,
    LeaseKeepAlive, LeaseRevoke, Put, PutReply, Range, RangeReply, Txn, TxnReply, Unlock,
)
from keel.client.data import DEFAULT_DATA_TIMEOUT_S, Bucket, DataView
from keel.core.api import CreateBucket
from keel.core.api.system import BUCKET_PREFIX
from keel.data.bucket import DEFAULT_BUCKET, BucketSpec
from keel.errors import KeelError, LeaseExpired
from keel.transport import ClientSettings

__all__ = ["DEFAULT_LOCK_TTL_S", "AsyncClient", "ClientSetup", "connect", "open_client"]

log = logging.getLogger("keel.client")

DEFAULT_LOCK_TTL_S = 10.0  # seconds a lock outlives a holder that stopped keeping its lease alive
STATUS_TIMEOUT_S = 2.0  # seconds each node gets to say who it is


class AsyncClient:
    """A connection to the core; make one with `keel.connect`."""

    def __init__(self, caller: Caller, nursery: trio.Nursery) -> None:
        self.caller = caller
        self._nursery = nursery
        self._kept: set[Lease] = set()  # leases this client keeps alive
        self._closed = False
        self._data = DataView()  # the partition map and data members, followed once a bucket is used

    @property
    def client_id(self) -> str:
        """This client's session id (random): with a seq, what makes a retried write idempotent."""
        return self.caller.session.client

    # --- keys ------------------------------------------------------------------------------

    async def put(self, key: BytesLike, value: BytesLike, *, lease: object = None, prev_kv: bool = False) -> PutReply:
        """Set `key` to `value`, attached to `lease` (an id or a `Lease`) if given; `prev_kv` returns the old key."""
        return await self.caller.mutate(Put(as_bytes(key, "key"), as_bytes(value), lease_id(lease), prev_kv))

    async def get(self, key: BytesLike, *, serializable: bool = False) -> KeyValue | None:
        """The key, or None when absent.

        Linearizable (the leader confirms it still leads) unless
        `serializable`, which any node answers from what it applied (maybe stale).
        """
        reply = await self._range(Range(as_bytes(key, "key"), serializable=serializable))
        return reply.kvs[0] if reply.kvs else None

    async def range(self, prefix: BytesLike, *, limit: int = 0, keys_only: bool = False,
                    serializable: bool = False) -> RangeReply:
        """The keys starting with `prefix`, in key order: at most `limit` (0: all); `.count` counts all."""
        return await self._range(Range(as_bytes(prefix, "prefix"), prefix=True, limit=limit, keys_only=keys_only,
                                       serializable=serializable))

    async def _range(self, op: Range) -> RangeReply:
        return await self.caller.read(op, leader=not op.serializable)

    async def delete(self, key: BytesLike, *, prefix: bool = False, prev_kv: bool = False) -> DeleteReply:
        """Delete `key` (every key starting with it when `prefix`); `.deleted` says how many went."""
        return await self.caller.mutate(Delete(as_bytes(key, "key"), prefix, prev_kv))

    async def cas(self, key: BytesLike, expected: BytesLike | None, new: BytesLike, *, lease: object = None) -> bool:
        """Set `key` to `new` if its value is `expected` (None: if it is absent); whether it did."""
        condition = absent(key) if expected is None else compare_value(key, "==", expected)
        reply = await self.txn(compare=[condition], success=[put_op(key, new, lease=lease)])
        return reply.succeeded

    async def txn(self, compare: Iterable[Compare] = (), success: Iterable[Any] = (),
                  failure: Iterable[Any] = ()) -> TxnReply:
        """If every compare holds run `success`, else `failure`; all at one revision.

        Build compares and operations with `keel.client.compare_value`,
        `absent`, `put_op`, `delete_op`, `get_op`…; `.replies` has one reply
        per operation run.
        """
        return await self.caller.mutate(Txn(tuple(compare), tuple(success), tuple(failure)))

    async def compact(self, revision: int) -> CompactReply:
        """Forget the history up to `revision`; watches from there on raise `Compacted`."""
        return await self.caller.mutate(Compact(revision))

    def watch(self, key: BytesLike, *, prefix: bool = False, start_revision: int = 0) -> Watcher:
        """An async iterator of every change to `key` (or under it), once each, in order.

        From `start_revision`; 0: the changes after the watch starts, which
        is at its first poll, or at `await watcher.start()` called before
        (do that when writes may happen between creating and iterating it).
        It resumes after the last event it received across reconnects and
        leader changes; it raises `Compacted` if its revision was compacted
        away, `Unavailable` if no node answered a poll within the deadline.
        """
        if start_revision < 0:
            raise ValueError(f"watch: start_revision {start_revision} is below 0")
        return Watcher(self.caller, WatchCursor(as_bytes(key, "key"), prefix, start_revision))

    # --- buckets (the data cluster) -------------------------------------------------------------

    def bucket(self, name: str = DEFAULT_BUCKET, *, timeout: float = DEFAULT_DATA_TIMEOUT_S) -> Bucket:
        """The data cluster's bucket `name`: its calls go straight to the data nodes (see `keel.client.data`).

        `timeout`: seconds a data node waits for the replicas a call needs.
        """
        if not self._data.started:
            self._data.started = True
            self._nursery.start_soon(self._data.follow, self)
        return Bucket(self, name, self._data, timeout=timeout)

    async def create_bucket(self, name: str, *, store: str = "lww", options: dict[str, Any] | None = None,
                            n: int = 3, r: int = 2, w: int = 2) -> BucketSpec:
        """Add a bucket to the core's bucket table (asking again with the same settings changes nothing).

        Raises:
            KeelError: a bad name or n/r/w, or a bucket of that name with other settings.
        """
        bucket = BucketSpec(name, store, dict(options or {}), n=n, r=r, w=w)
        await self.caller.mutate(CreateBucket(bucket.to_bytes()))
        return bucket

    async def buckets(self) -> list[BucketSpec]:
        """Every bucket of the core's bucket table, by name."""
        reply = await self._range(Range(BUCKET_PREFIX, prefix=True))
        return sorted((BucketSpec.from_bytes(kv.value) for kv in reply.kvs), key=lambda b: b.name)

    # --- leases --------------------------------------------------------------------------------

    async def grant_lease(self, ttl: float, *, keep_alive: bool = True) -> Lease:
        """A new lease of `ttl` seconds, kept alive by this client until revoked (unless not `keep_alive`)."""
        if not ttl > 0:
            raise ValueError(f"lease ttl {ttl!r} is not above 0")
        sent = trio.current_time()
        reply: LeaseGrantReply = await self.caller.mutate(LeaseGrant(float(ttl)))
        lease = Lease(reply.id, reply.ttl, confirmed_at=sent)
        if keep_alive:
            self._kept.add(lease)
            self._nursery.start_soon(self._keep, lease)
        return lease

    async def _keep(self, lease: Lease) -> None:
        try:
            await lease.keep_alive(self.caller)
        finally:
            self._kept.discard(lease)

    async def keepalive(self, lease: object) -> float:
        """Restart the lease's clock at the leader once; its ttl in seconds.

        Raises:
            LeaseExpired: the lease is gone.
        """
        reply = await self.caller.read(LeaseKeepAlive(lease_id(lease)))
        return reply.ttl

    async def revoke_lease(self, lease: object, *, missing_ok: bool = False) -> None:
        """End a lease and delete its keys.

        Raises:
            LeaseExpired: it was already gone (unless `missing_ok`).
        """
        try:
            if isinstance(lease, Lease):
                await lease.revoke(self.caller)
            else:
                await self.caller.mutate(LeaseRevoke(lease_id(lease)))
        except LeaseExpired:
            if not missing_ok:
                raise

    @asynccontextmanager
    async def lease(self, ttl: float) -> AsyncIterator[Lease]:
        """A lease kept alive while the body runs, revoked at its end.

        If the lease is lost (the core ended it, or no keep-alive was
        confirmed within its ttl), the body is cancelled and the `async with`
        raises `LeaseExpired`; `lease.lost` is set the moment it happens.
        """
        lease = await self.grant_lease(ttl)
        with trio.CancelScope() as body:
            undo = lease.on_lost(body.cancel)
            try:
                yield lease
            except BaseException:
                undo()
                with contextlib.suppress(LeaseExpired):  # the body's own error says more
                    await lease.revoke(self.caller)
                raise
            undo()
            await lease.revoke(self.caller)  # raises LeaseExpired for a loss nobody noticed
        lease.check()

    @asynccontextmanager
    async def lock(self, name: BytesLike, *, ttl: float = DEFAULT_LOCK_TTL_S) -> AsyncIterator[int]:
        """Hold lock `name` while the body runs; yields the fencing token (it only grows).

        Waits as long as another holds it: bound the wait with
        `trio.fail_after`. The lock lives on a lease of `ttl` seconds kept
        alive meanwhile; if that lease is lost the body is cancelled and
        `LeaseExpired` raised, since another may hold the lock by then.
        """
        async with self.lease(ttl) as lease:
            held = await acquire(self.caller, as_bytes(name, "lock name"), lease)
            try:
                yield held.token
            finally:
                if lease.error is None:
                    await self._unlock(held.key)

    async def _unlock(self, key: bytes) -> None:
        # Best effort: if it fails, revoking the lease right after deletes the key too.
        with trio.move_on_after(REVOKE_GRACE_S, shield=True):
            try:
                await self.caller.mutate(Unlock(key), deadline=REVOKE_GRACE_S)
            except KeelError as exc:
                log.warning("unlock %r: %s; the lease's revoke releases it", key, exc)

    def election(self, name: BytesLike) -> Election:
        """Election `name`: `campaign`, `leader`, `observe`, `resign`."""
        return Election(self, name)

    # --- the core ---------------------------------------------------------------------------

    async def node_status(self) -> list[CoreStatusReply]:
        """What each endpoint that answers in time says about itself (role, leader, term, indexes)."""
        found: dict[int, CoreStatusReply] = {}
        endpoints = self.caller.routing.endpoints

        async def ask(i: int) -> None:
            try:
                found[i] = await self.caller.status(endpoints[i].address, timeout=STATUS_TIMEOUT_S)
            except KeelError:
                pass  # down or not a core node: left out

        async with trio.open_nursery() as nursery:
            for i in range(len(endpoints)):
                nursery.start_soon(ask, i)
        return [found[i] for i in sorted(found)]

    async def aclose(self) -> None:
        """Revoke the leases kept alive and stop the background work. Idempotent."""
        if self._closed:
            return
        self._closed = True
        # All at once (they travel as one batch), so closing takes one revoke's
        # time at most (`REVOKE_GRACE_S`, the bound of the shield), however many leases there are.
        try:
            with trio.CancelScope(shield=True):
                async with trio.open_nursery() as nursery:
                    for lease in sorted(self._kept, key=lambda lease: lease.id):
                        nursery.start_soon(self._give_back, lease)
        finally:
            self._nursery.cancel_scope.cancel()

    async def _give_back(self, lease: Lease) -> None:
        try:
            await lease.revoke(self.caller)
        except LeaseExpired:
            pass  # gone already; nothing to give back


@attrs.frozen(kw_only=True)
class ClientSetup:
    """What a client needs before it connects: endpoints, transport, time budget; shared by the three doors."""

    routing: Routing  # mutable: what the client learns about the leader; one per client
    connect: Any  # the transport plugin's `connect(address, settings)`
    settings: ClientSettings
    options: ClientOptions

    @classmethod
    def of(cls, endpoints: str | Sequence[EndpointLike], *, transport: str = "tcp",
           request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S, deadline: float = DEFAULT_DEADLINE_S,
           connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S, settings: ClientSettings | None = None) -> ClientSetup:
        """Check the arguments of `keel.connect` and load the transport; no connection is opened.

        Raises:
            ConfigError: bad endpoints, or an unknown transport (listing the installed ones).
        """
        from keel import plugins  # noqa: PLC0415 - loading plugins costs; only a client that connects pays
        from keel.contract import Kind  # noqa: PLC0415

        options = ClientOptions(transport=transport, request_timeout=request_timeout, deadline=deadline,
                                connect_timeout=connect_timeout)
        routing = Routing(parse_endpoints(endpoints))
        plugin = plugins.load().get(Kind.TRANSPORT, options.transport, field="transport")
        if settings is None:
            settings = ClientSettings(connect_timeout=options.connect_timeout)
        return cls(routing=routing, connect=plugin.connect, settings=settings, options=options)

    def open(self) -> AbstractAsyncContextManager[AsyncClient]:
        """The async client over this setup, with a new session: `async with setup.open() as client:`."""
        return open_client(routing=self.routing, session=Session(), connect=self.connect, settings=self.settings,
                           options=self.options)


@asynccontextmanager
async def open_client(*, routing: Routing, session: Session, connect: Any, settings: ClientSettings,
                      options: ClientOptions) -> AsyncIterator[AsyncClient]:
    """A client over given routing and session state: its nursery, its connections, closed on the way out."""
    pool = Pool(connect, settings)
    caller = Caller(routing=routing, session=session, pool=pool, options=options,
                    rng=random.Random(secrets.randbits(64)))
    try:
        async with trio.open_nursery() as nursery:
            client = AsyncClient(caller, nursery)
            try:
                yield client
            finally:
                await client.aclose()
    except BaseExceptionGroup as group:
        # The background tasks do not raise, so a lone error is the body's: raise it as itself.
        if len(group.exceptions) == 1:
            lone = group.exceptions[0]
            raise lone from lone.__cause__
        raise
    finally:
        await pool.aclose()


@asynccontextmanager
async def connect(endpoints: str | Sequence[EndpointLike], *, transport: str = "tcp",
                  request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S, deadline: float = DEFAULT_DEADLINE_S,
                  connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
                  settings: ClientSettings | None = None) -> AsyncIterator[AsyncClient]:
    """Connect to the core: `async with keel.connect(["127.0.0.1:7101", …]) as c:`.

    Args:
        endpoints: core nodes' client addresses: `host:port` strings,
            `Address`es, `Endpoint`s (`endpoints_from_cluster(path)` reads a
            cluster file), or one comma-separated string. Any one reachable
            node is enough to find the others' leader if its id is known.
        transport: the transport plugin (the cluster's `transport.plugin`).
        request_timeout: seconds one attempt at one node may take.
        deadline: seconds one call may take over all its retries.
        connect_timeout: seconds to open one connection.
        settings: the transport's client settings (TLS, options); its
            connect timeout wins over `connect_timeout`.

    Raises:
        ConfigError: bad endpoints, or an unknown transport (listing the installed ones).
    """
    setup = ClientSetup.of(endpoints, transport=transport, request_timeout=request_timeout, deadline=deadline,
                           connect_timeout=connect_timeout, settings=settings)
    async with setup.open() as client:
        yield client

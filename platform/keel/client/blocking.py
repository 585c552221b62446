"""The blocking client: `keel.Client(endpoints)`, the async client's calls for code that is not async.

A `Client` starts one daemon thread running a Trio loop that holds the
async client of `keel.connect` (`keel.client.handle`): its connections,
session and batcher stay open across calls, and its leases (and so locks
and candidacies) are kept alive by that loop every ttl/3 whether the
program calls or sleeps. Each call is handed to the loop and the calling
thread waits for its answer, so:

- one client may be shared by any number of threads; calls they make at
  the same time run side by side in the loop and travel as one batch, as
  an async program's tasks do;
- errors and deadlines are the async client's: typed errors, every call
  bounded by its deadline; Ctrl-C while waiting cancels the call;
- a lease lost anyway (a partition longer than its ttl) is reported to
  the listeners (`add_lease_listener`) and raised, once, by the next call;
- watches are iterators (`watch`) or callbacks (`add_watch_callback`) run
  on a thread the client owns, resumed across leader changes;
- it refuses to be called from inside a running Trio loop (use
  `keel.connect` there) or asyncio loop (use `keel.aio.connect`), which it
  would block;
- `close()` (or leaving the `with` block) revokes the leases and ends the
  thread; a client dropped or left open at exit is closed the same way.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import trio

from keel.client.async_client import DEFAULT_LOCK_TTL_S, ClientSetup
from keel.client.election import DEFAULT_ELECTION_TTL_S, LeaderObserver
from keel.client.data import DEFAULT_DATA_TIMEOUT_S
from keel.client.encoding import BytesLike, as_bytes, lease_id
from keel.client.endpoints import EndpointLike
from keel.client.handle import ClientHandle, LeaseListener
from keel.client.lease_view import LeaseView
from keel.client.options import DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_DEADLINE_S, DEFAULT_REQUEST_TIMEOUT_S
from keel.client.portal import Pending
from keel.client.streams import Stream, WatchCallback
from keel.core.api import (
    CampaignReply, CompactReply, Compare, CoreStatusReply, DeleteReply, Event, KeyValue, PutReply, RangeReply,
    Resign, TxnReply, Unlock,
)
from keel.data.bucket import DEFAULT_BUCKET, BucketSpec, check_bucket_name
from keel.errors import KeelError
from keel.transport import ClientSettings

__all__ = ["BlockingElection", "BlockingLease", "BlockingObserver", "BlockingWatch", "Client"]

log = logging.getLogger("keel.client")

T = TypeVar("T")
_numbers = itertools.count(1)  # names the clients' threads apart


def _refuse_in_loop() -> None:
    """Refuse a blocking call from a thread that runs an event loop, which the wait would block.

    Raises:
        RuntimeError: inside a running Trio or asyncio loop; the message names the door to use there.
    """
    if trio.lowlevel.in_trio_run():
        raise RuntimeError("keel.Client: a blocking call inside a running Trio loop would block it; "
                           "use `async with keel.connect(...)` there")
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError("keel.Client: a blocking call inside a running asyncio loop would block it; "
                       "use `async with keel.aio.connect(...)` there")


def _wait(call: Pending[T]) -> T:
    """The call's answer: the calling thread waits (the handle refused a thread that runs a loop)."""
    return call.result()


class BlockingLease(LeaseView):
    """A lease of a blocking `Client`, kept alive by its loop until revoked; see `LeaseView`."""

    def keepalive(self) -> None:
        """Refresh this lease now (the loop does it every ttl/3 anyway).

        Raises:
            LeaseExpired: it is gone, or could not be confirmed within its ttl.
        """
        self.check()
        _wait(self._handle.refresh(self))
        self.check()

    def revoke(self, *, missing_ok: bool = False) -> None:
        """End the lease and delete its keys.

        Raises:
            LeaseExpired: it was already gone (unless `missing_ok`).
        """
        _wait(self._handle.revoke(self, missing_ok=missing_ok))


class BlockingWatch:
    """A blocking iterator of `Event`s: each `next()` waits for the next one (Ctrl-C interrupts)."""

    def __init__(self, handle: ClientHandle, key: BytesLike, prefix: bool, start_revision: int) -> None:
        # Building a watcher is plain data: only its polls run in the loop.
        self._watcher = handle.client.watch(key, prefix=prefix, start_revision=start_revision)
        self._stream = Stream(handle, self._watcher.__anext__)

    @property
    def next_revision(self) -> int:
        return self._watcher.next_revision

    def start(self) -> int:
        """Begin now rather than at the first `next()`; the revision the events start from."""
        return _wait(self._stream.run(self._watcher.start))

    def __iter__(self) -> BlockingWatch:
        return self

    def __next__(self) -> Event:
        return _wait(self._stream.next())


class BlockingObserver:
    """A blocking iterator of an election's leaders: the leader now, then each new one."""

    def __init__(self, handle: ClientHandle, name: bytes) -> None:
        self._stream = Stream(handle, LeaderObserver(handle.client.caller, name).__anext__)

    def __iter__(self) -> BlockingObserver:
        return self

    def __next__(self) -> KeyValue | None:
        return _wait(self._stream.next())


class BlockingElection:
    """Election `name` for a blocking client: the candidacy's lease is kept alive by the client's loop."""

    def __init__(self, client: Client, name: BytesLike) -> None:
        self._client = client
        self.name = as_bytes(name, "election name")
        self.key: bytes | None = None  # this client's candidacy, once elected
        self.lease: BlockingLease | None = None  # its lease: `lease.lost` ends the leadership

    def campaign(self, value: BytesLike, *, ttl: float = DEFAULT_ELECTION_TTL_S,
                 timeout: float | None = None) -> CampaignReply:
        """Stand with `value`; return once elected.

        Raises:
            Unavailable: not elected within `timeout` seconds (None: wait as long as it takes).
            LeaseExpired, KeelError: as for `Election.campaign`.
        """
        if self.lease is not None:
            raise KeelError(f"election {self.name!r}: already campaigning here; resign first")
        view, reply = _wait(self._client._handle.campaign(self.name, as_bytes(value), ttl=ttl,
                                                                         timeout=timeout))
        self.key, self.lease = reply.key, view
        return reply

    def resign(self) -> None:
        """Give up the candidacy and its lease. Nothing happens when there is none."""
        key, lease = self.key, self.lease
        self.key = self.lease = None
        if key is not None and lease is not None:
            self._client._end(lease, release=Resign(key), quiet=True)

    def leader(self) -> KeyValue | None:
        """The leading candidacy, None when nobody stands."""
        return self._client._call(lambda c: c.election(self.name).leader())

    def observe(self) -> BlockingObserver:
        """A blocking iterator: the leader now, then each new leader (None when nobody stands)."""
        return BlockingObserver(self._client._handle, self.name)


class BlockingBucket:
    """A bucket of the data cluster for code that is not async; `Client.bucket(name)` makes one."""

    def __init__(self, client: Client, name: str, timeout: float) -> None:
        self._client = client
        self.name = name
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"BlockingBucket({self.name!r})"

    def put(self, key: BytesLike, value: BytesLike, *, n: int = 0, w: int = 0, timeout: float | None = None) -> None:
        """Store `value` under `key`; returns once `w` replicas hold it durably (`TooFewReplicas` if not in time)."""
        self._client._call(lambda c: c.bucket(self.name, timeout=self._timeout).put(key, value, n=n, w=w,
                                                                                    timeout=timeout))

    def get(self, key: BytesLike, *, n: int = 0, r: int = 0, timeout: float | None = None) -> bytes | None:
        """The value under `key` merged from `r` replicas; None when absent or deleted."""
        return self._client._call(lambda c: c.bucket(self.name, timeout=self._timeout).get(key, n=n, r=r,
                                                                                           timeout=timeout))

    def delete(self, key: BytesLike, *, n: int = 0, w: int = 0, timeout: float | None = None) -> None:
        """Delete `key` (a tombstone that replicates like a value)."""
        self._client._call(lambda c: c.bucket(self.name, timeout=self._timeout).delete(key, n=n, w=w,
                                                                                       timeout=timeout))

    def call(self, op: str, key: BytesLike, *args: Any, n: int = 0, r: int = 0, w: int = 0,
             timeout: float | None = None) -> Any:
        """Any operation of the bucket's store on `key`; its result."""
        return self._client._call(lambda c: c.bucket(self.name, timeout=self._timeout).call(
            op, key, *args, n=n, r=r, w=w, timeout=timeout))


class Client:
    """The core for code that is not async; see the module doc.

    Same arguments as `keel.connect`. Use it as a context manager, or call
    `close()`, to revoke its leases and end its thread.

    Raises:
        ConfigError: bad endpoints, or an unknown transport.
    """

    def __init__(self, endpoints: str | Sequence[EndpointLike], *, transport: str = "tcp",
                 request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S, deadline: float = DEFAULT_DEADLINE_S,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S, settings: ClientSettings | None = None) -> None:
        setup = ClientSetup.of(endpoints, transport=transport, request_timeout=request_timeout, deadline=deadline,
                               connect_timeout=connect_timeout, settings=settings)
        self._handle = ClientHandle.start(setup, make_lease=BlockingLease, guard=_refuse_in_loop,
                                          name=f"keel-client-{next(_numbers)}")
        # Closes the client when the program drops it or exits without `close()`; holds no reference to it.
        self._finalizer = weakref.finalize(self, self._handle.close)

    @property
    def client_id(self) -> str:
        """This client's session id (random): with a seq, what makes a retried write idempotent."""
        return self._handle.client_id

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Revoke the leases this client keeps and end its threads; calls still running fail. Idempotent."""
        self._finalizer()

    # --- buckets (the data cluster) ---------------------------------------------------------

    def bucket(self, name: str = DEFAULT_BUCKET, *, timeout: float = DEFAULT_DATA_TIMEOUT_S) -> BlockingBucket:
        """The data cluster's bucket `name` (see `keel.client.data`); `timeout`: seconds a data node waits for replicas."""
        return BlockingBucket(self, check_bucket_name(name), timeout)

    def create_bucket(self, name: str, *, store: str = "lww", options: dict[str, Any] | None = None,
                      n: int = 3, r: int = 2, w: int = 2) -> BucketSpec:
        """Add a bucket to the core's bucket table (the same settings again change nothing)."""
        return self._call(lambda c: c.create_bucket(name, store=store, options=options, n=n, r=r, w=w))

    def buckets(self) -> list[BucketSpec]:
        """Every bucket of the core's bucket table, by name."""
        return self._call(lambda c: c.buckets())

    # --- keys ------------------------------------------------------------------------------

    def put(self, key: BytesLike, value: BytesLike, *, lease: object = None, prev_kv: bool = False) -> PutReply:
        """Set `key` to `value`, attached to `lease` if given; `prev_kv` returns the old key."""
        number = lease_id(lease)
        return self._call(lambda c: c.put(key, value, lease=number, prev_kv=prev_kv))

    def get(self, key: BytesLike, *, serializable: bool = False) -> KeyValue | None:
        """The key, or None when absent; linearizable unless `serializable`."""
        return self._call(lambda c: c.get(key, serializable=serializable))

    def range(self, prefix: BytesLike, *, limit: int = 0, keys_only: bool = False,
              serializable: bool = False) -> RangeReply:
        """The keys starting with `prefix`, in key order: at most `limit` (0: all)."""
        return self._call(lambda c: c.range(prefix, limit=limit, keys_only=keys_only, serializable=serializable))

    def delete(self, key: BytesLike, *, prefix: bool = False, prev_kv: bool = False) -> DeleteReply:
        """Delete `key` (every key starting with it when `prefix`)."""
        return self._call(lambda c: c.delete(key, prefix=prefix, prev_kv=prev_kv))

    def cas(self, key: BytesLike, expected: BytesLike | None, new: BytesLike, *, lease: object = None) -> bool:
        """Set `key` to `new` if its value is `expected` (None: if it is absent); whether it did."""
        number = lease_id(lease)
        return self._call(lambda c: c.cas(key, expected, new, lease=number))

    def txn(self, compare: Sequence[Compare] = (), success: Sequence[Any] = (),
            failure: Sequence[Any] = ()) -> TxnReply:
        """If every compare holds run `success`, else `failure`; all at one revision."""
        return self._call(lambda c: c.txn(compare, success, failure))

    def compact(self, revision: int) -> CompactReply:
        """Forget the history up to `revision`."""
        return self._call(lambda c: c.compact(revision))

    def watch(self, key: BytesLike, *, prefix: bool = False, start_revision: int = 0) -> BlockingWatch:
        """A blocking iterator of every change to `key` (or under it), once each, in order.

        From `start_revision`; 0: the changes after its first `next()` (or `start()`).
        """
        if start_revision < 0:
            raise ValueError(f"watch: start_revision {start_revision} is below 0")
        return BlockingWatch(self._handle, key, prefix, start_revision)

    def add_watch_callback(self, key: BytesLike, callback: Callable[[Event | KeelError], object], *,
                           prefix: bool = False, start_revision: int = 0) -> WatchCallback:
        """Call `callback(event)` for every change to `key` (or under it), once each, in order.

        The callbacks run one at a time on the client's callback thread
        (keep them short; they may call this client). The watch starts
        before this returns (from `start_revision`, 0: now), goes on across
        leader changes, and ends with `cancel()` or the client; an error
        that ends it (`Compacted`) is passed to `callback` instead of an event.
        """
        if start_revision < 0:
            raise ValueError(f"watch: start_revision {start_revision} is below 0")
        watcher = self._handle.client.watch(key, prefix=prefix, start_revision=start_revision)
        return _wait(self._handle.watch_callback(watcher, callback))

    # --- leases, locks, elections ------------------------------------------------------------------

    def grant_lease(self, ttl: float, *, keep_alive: bool = True) -> BlockingLease:
        """A new lease of `ttl` seconds, kept alive by this client's loop until revoked (unless not `keep_alive`)."""
        lease = _wait(self._handle.grant(ttl, keep_alive=keep_alive))
        assert isinstance(lease, BlockingLease)
        return lease

    def revoke_lease(self, lease: object, *, missing_ok: bool = False) -> None:
        """End a lease (a `BlockingLease` or an id) and delete its keys.

        Raises:
            LeaseExpired: it was already gone (unless `missing_ok`).
        """
        _wait(self._handle.revoke(lease, missing_ok=missing_ok))

    def keepalive(self, lease: object = None) -> None:
        """Refresh `lease` now, or every lease this client keeps when None; the loop does it every ttl/3 anyway.

        Raises:
            LeaseExpired: the lease given is gone.
        """
        if isinstance(lease, BlockingLease):
            lease.keepalive()
        elif lease is None:
            _wait(self._handle.refresh_all())
        else:
            number = lease_id(lease)
            self._call(lambda c: c.keepalive(number))

    def add_lease_listener(self, listener: LeaseListener) -> None:
        """Call `listener(lease)` on the client's callback thread when a lease of it is lost.

        Lost: the core ended it or no keep-alive was confirmed within its
        ttl, while the program still held it (not after revoking it). The
        next call of the client also raises `LeaseExpired` for it, once.
        """
        self._handle.add_lease_listener(listener)

    def remove_lease_listener(self, listener: LeaseListener) -> None:
        self._handle.remove_lease_listener(listener)

    @contextmanager
    def lease(self, ttl: float) -> Iterator[BlockingLease]:
        """A lease kept alive while the block runs, revoked at its end.

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
        """Hold lock `name` while the block runs; yields the fencing token (it only grows).

        The lock's lease of `ttl` seconds is kept alive by the client's loop
        meanwhile, however long the block runs or sleeps.

        Raises:
            Unavailable: not acquired within `timeout` seconds (None: wait as long as it takes).
            LeaseExpired: the lock's lease was lost while the block ran
                (another may have held the lock since): raised by the block's
                next call of this client, and on leaving the block.
        """
        name_bytes = as_bytes(name, "lock name")
        lease, held = _wait(self._handle.acquire_lock(name_bytes, ttl=ttl, timeout=timeout))
        try:
            yield held.token
        except BaseException:
            self._end(lease, release=Unlock(held.key), quiet=True)
            raise
        self._end(lease, release=Unlock(held.key))

    def election(self, name: BytesLike) -> BlockingElection:
        """Election `name`: `campaign`, `leader`, `observe`, `resign`."""
        return BlockingElection(self, name)

    def node_status(self) -> list[CoreStatusReply]:
        """What each endpoint that answers in time says about itself."""
        return self._call(lambda c: c.node_status())

    # --- waiting ----------------------------------------------------------------------------------

    def _call(self, fn: Callable[[Any], Any]) -> Any:
        return self._handle.call(fn).result()

    def _end(self, lease: LeaseView, *, release: Any = None, quiet: bool = False) -> None:
        """Release the key (`Unlock`, `Resign`) and revoke `lease`; unless `quiet`, raise `LeaseExpired` if it was lost."""
        try:
            _wait(self._handle.end(lease, release=release))
        except KeelError as exc:
            if not quiet:
                raise
            log.warning("lease %d: not revoked (%s); it ends by itself within %g s", lease.id, exc, lease.ttl)
        if not quiet:
            lease.check()


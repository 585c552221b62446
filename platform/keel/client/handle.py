"""What the blocking and the asyncio doors share: one async client in a background loop, and its leases.

Theory of operation. A `ClientHandle` opens a `Portal` (one daemon thread
running a Trio loop) holding the async client of `keel.connect`: its
connections, session, batcher and lease keep-alives live there, and keep
running between the program's calls. Every operation of a door is a
coroutine on that async client handed to the loop (`call`), which returns a
`Pending`: the blocking door waits on it, the asyncio door awaits it. The
doors add nothing but the waiting, so both behave alike by construction;
anything else that wants both doors (the data cluster's bucket handles)
builds its operations as calls here the same way.

Leases are the async client's, kept alive by the loop every ttl/3; the
program holds a `LeaseView` of each. A lease lost anyway (a partition
longer than its ttl, a revoke by someone else) is told to the program
twice: the listeners registered with `add_lease_listener` are called on
the client's callback thread, and the next call of the client (from any
thread) raises `LeaseExpired` for it once, without being sent. A lease the
program ended itself (revoked, or left its block) is never reported so.

A lock or a candidacy is a lease plus a key: `acquire_lock` and `campaign`
grant the lease and wait in the queue in one call; `end` releases the key
and revokes the lease in another. Closing stops the loop: calls still
running fail, and the async client revokes every lease it keeps.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from keel.client.async_client import AsyncClient, ClientSetup
from keel.client.callbacks import CallbackThread
from keel.client.encoding import lease_id
from keel.client.lease import REVOKE_GRACE_S, Lease, refresh
from keel.client.lease_view import LeaseView
from keel.client.lock import campaign, lock
from keel.client.portal import CLOSE_TIMEOUT_S, Pending, Portal
from keel.client.streams import WatchCallback
from keel.client.watch import Watcher
from keel.core.api import CampaignReply, LockReply
from keel.errors import KeelError, LeaseExpired, Unavailable

__all__ = ["ClientHandle", "LeaseListener", "bounded"]

log = logging.getLogger("keel.client")

T = TypeVar("T")
V = TypeVar("V", bound=LeaseView)
LeaseListener = Callable[[Any], object]  # called with the lost lease's view, on the callback thread


class ClientHandle:
    """One async client in a background loop, for the doors to call; see the module doc."""

    def __init__(self, portal: Portal, client: AsyncClient, make_lease: Callable[[ClientHandle, Lease], LeaseView],
                 guard: Callable[[], None], name: str) -> None:
        self.portal = portal
        self.client = client  # lives in the loop: touch it only in calls
        self.callbacks = CallbackThread(f"{name}-callbacks")
        self._make_lease = make_lease
        self._guard = guard  # the door's check of the calling thread, run before every call
        self._lock = threading.Lock()  # guards the fields below, shared by every thread of the program
        self._unreported: list[LeaseView] = []  # lost leases not raised to the program yet
        self._views: dict[int, LeaseView] = {}  # by id: the leases granted, neither ended by the program nor lost
        self._listeners: list[LeaseListener] = []
        self._closed = False

    @classmethod
    def start(cls, setup: ClientSetup, *, make_lease: Callable[[ClientHandle, Lease], LeaseView],
              guard: Callable[[], None] = lambda: None, name: str) -> ClientHandle:
        """Start the loop's thread with the async client of `setup` in it.

        `make_lease` wraps each lease for the door; `guard()` runs before every
        call and raises if the calling thread must not make it.

        Raises:
            KeelError: the loop did not start.
        """
        portal, client = Portal.open(setup.open, name=name)
        return cls(portal, client, make_lease, guard, name)

    @property
    def client_id(self) -> str:
        return self.client.client_id

    @property
    def closed(self) -> bool:
        return self._closed

    # --- calls --------------------------------------------------------------------------------------

    def call(self, fn: Callable[[AsyncClient], Awaitable[T]], *, report: bool = True) -> Pending[T]:
        """Run `fn(async_client)` in the loop.

        Raises:
            KeelError: the client is closed.
            LeaseExpired: a lease of this client was lost since the last call
                (unless not `report`); `fn` was not run.
            RuntimeError: the door's guard refused the calling thread.
        """
        self._guard()
        if self._closed:
            raise KeelError("client: closed")
        if report:
            self.raise_lost()
        return self.portal.submit(fn)

    def raise_lost(self) -> None:
        """Raise `LeaseExpired` for the leases lost and not reported yet, once."""
        with self._lock:
            if not self._unreported:
                return
            lost = [v for v in self._unreported if not (v.ended or v.reported)]
            self._unreported.clear()
            for view in lost:
                view.reported = True
        if lost:
            ids = ", ".join(str(v.id) for v in lost)
            raise LeaseExpired(f"lease {ids}: lost while the client ran: {lost[0].error}") from lost[0].error

    # --- leases ---------------------------------------------------------------------------------------

    def add_lease_listener(self, listener: LeaseListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_lease_listener(self, listener: LeaseListener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _view(self, lease: Lease) -> LeaseView:
        """The program's view of `lease`, told when it is lost (in the loop)."""
        view = self._make_lease(self, lease)
        lease.on_lost(lambda: self._lost(view))
        with self._lock:
            self._views[view.id] = view
        return view

    def _ended(self, view: LeaseView) -> None:
        """The program ends `view` itself: its loss is no news any more."""
        view.ended = True
        with self._lock:
            self._views.pop(view.id, None)

    def _lost(self, view: LeaseView) -> None:
        """In the loop, once per lease: queue the report and call the listeners."""
        if view.ended or self._closed:
            return
        with self._lock:
            self._views.pop(view.id, None)  # nothing left to keep alive or end
            self._unreported.append(view)
            listeners = list(self._listeners)
        log.warning("lease %d: lost: %s", view.id, view.error)
        for listener in listeners:
            self.callbacks.submit(listener, view)

    def grant(self, ttl: float, *, keep_alive: bool = True) -> Pending[Any]:
        """A new lease of `ttl` seconds (its view), kept alive by the loop unless not `keep_alive`."""
        if not ttl > 0:
            raise ValueError(f"lease ttl {ttl!r} is not above 0")

        async def grant(c: AsyncClient) -> LeaseView:
            return self._view(await c.grant_lease(ttl, keep_alive=keep_alive))

        return self.call(grant)

    def refresh(self, view: LeaseView) -> Pending[None]:
        """One keep-alive for `view` now; a lease that cannot be confirmed is marked lost."""
        return self.call(lambda c: refresh(c.caller, view.lease), report=False)

    def refresh_all(self) -> Pending[None]:
        """One keep-alive for every lease the loop keeps alive, at once."""

        with self._lock:
            views = sorted(self._views.values(), key=lambda view: view.id)

        async def each(c: AsyncClient) -> None:
            async with trio.open_nursery() as nursery:
                for view in views:
                    if view.lease.error is None and not view.lease.revoked:
                        nursery.start_soon(refresh, c.caller, view.lease)

        return self.call(each)

    def revoke(self, lease: object, *, missing_ok: bool = False) -> Pending[None]:
        """End `lease` (a view or an id) and delete its keys; the call raises `LeaseExpired` if it was gone."""
        number = lease_id(lease)
        with self._lock:
            view = self._views.get(number)
        if view is None:
            return self.call(lambda c: c.revoke_lease(number, missing_ok=missing_ok))
        self._ended(view)  # kept alive here: stop that too, and take no loss for news

        async def revoke(c: AsyncClient) -> None:
            await c.revoke_lease(view.lease, missing_ok=missing_ok)
            if view.lease.error is not None and not missing_ok:  # lost before: the revoke had nothing to end
                raise LeaseExpired(f"lease {view.id}: lost: {view.lease.error}")

        return self.call(revoke, report=False)

    def end(self, view: LeaseView, *, release: Any = None) -> Pending[None]:
        """Send `release` (an `Unlock` or `Resign`) while the lease lives, then revoke it; never raises in the loop.

        After it, `view.check()` says whether the lease was lost before its end.
        """
        self._ended(view)

        async def end(c: AsyncClient) -> None:
            if release is not None and view.lease.error is None:
                with trio.move_on_after(REVOKE_GRACE_S, shield=True):
                    try:
                        await c.caller.mutate(release, deadline=REVOKE_GRACE_S)
                    except KeelError as exc:
                        log.warning("%s: %s; revoking the lease releases it", type(release).__name__, exc)
            try:
                await view.lease.revoke(c.caller)
            except LeaseExpired:
                pass  # marked lost: `check()` raises it

        return self.call(end, report=False)

    def acquire_lock(self, name: bytes, *, ttl: float, timeout: float | None) -> Pending[tuple[LeaseView, LockReply]]:
        """Grant a lease of `ttl` s and wait for lock `name` under it, at most `timeout` s (None: as long as it takes).

        If the wait fails or is cancelled, the lease is revoked before the call ends.
        """
        return self._queue(lambda c, lease: lock(c.caller, name, lease), ttl=ttl, timeout=timeout,
                           what=f"lock {name!r}")

    def campaign(self, name: bytes, value: bytes, *, ttl: float,
                 timeout: float | None) -> Pending[tuple[LeaseView, CampaignReply]]:
        """Grant a lease and stand in election `name` with `value` until elected; as `acquire_lock`."""
        return self._queue(lambda c, lease: campaign(c.caller, name, lease, value), ttl=ttl, timeout=timeout,
                           what=f"campaign {name!r}")

    def _queue(self, ask: Callable[[AsyncClient, Lease], Awaitable[T]], *, ttl: float, timeout: float | None,
               what: str) -> Pending[tuple[LeaseView, T]]:
        if not ttl > 0:
            raise ValueError(f"{what}: ttl {ttl!r} is not above 0")

        async def queue(c: AsyncClient) -> tuple[LeaseView, T]:
            view = self._view(await c.grant_lease(ttl))
            try:
                reply = await bounded(ask(c, view.lease), timeout, what)
            except BaseException:
                self._ended(view)
                await c.revoke_lease(view.lease, missing_ok=True)  # shielded and bounded inside
                raise
            return view, reply

        return self.call(queue)

    def watch_callback(self, watcher: Watcher, callback: Callable[[Any], object]) -> Pending[WatchCallback]:
        """Start `watcher` now and hand its events to `callback` on the callback thread (`WatchCallback`)."""
        subscription = WatchCallback(self, watcher, callback)

        async def begin(_c: AsyncClient) -> WatchCallback:
            await watcher.start()
            self.portal.spawn(subscription.run)
            return subscription

        return self.call(begin)

    # --- closing ------------------------------------------------------------------------------------

    def close(self, *, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Stop the loop (revoking the leases it keeps) and the callback thread; wait up to `timeout`. Idempotent."""
        if not self._begin_close():
            return
        self.portal.close(timeout=timeout)
        self.callbacks.close(timeout=timeout)

    def request_close(self) -> None:
        """Begin closing without waiting (the asyncio door then awaits `portal.finished`)."""
        if self._begin_close():
            self.portal.request_stop()
            self.callbacks.close()

    def _begin_close(self) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._closed = True
            return True


async def bounded(awaitable: Awaitable[T], timeout: float | None, what: str) -> T:
    """`await awaitable`, giving up after `timeout` seconds (None: never).

    Raises:
        Unavailable: not done within `timeout`.
    """
    if timeout is None:
        return await awaitable
    with trio.move_on_after(timeout):
        return await awaitable
    raise Unavailable(f"{what}: not done within {timeout:g} s")

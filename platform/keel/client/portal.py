"""A Trio loop on a thread of its own, serving calls handed to it from any other thread.

Theory of operation. `Portal.open` starts one daemon thread that runs
`trio.run`: it enters the resource given (the async client), opens a
nursery for calls and reports ready. From then on any thread may
`submit(fn)`: the call goes over with `TrioToken.run_sync_soon` (thread
safe, FIFO), which starts a task in the calls nursery that awaits
`fn(resource)` and settles a `concurrent.futures.Future`. Calls that
several threads submit while the loop is busy are started in one go when
it wakes, so they run side by side, as the tasks of an async program do
(and the batcher sends them as one request).

The waiting side chooses its door: `Pending.result()` blocks a thread,
`await call` suspends an asyncio task. Either can give up (Ctrl-C, an
asyncio cancellation): `Pending.cancel()` cancels the task's own scope in the
loop, and the task's own cleanup (a shielded revoke, say) still runs.

`close()` asks the loop to stop: the calls still running are cancelled
(their futures fail with `KeelError`), the resource is left (the async
client revokes its leases and closes its connections, each step bounded),
and `trio.run` returns. A future is always settled: a call submitted after
the loop ended, or one the loop never reached, fails with `KeelError`.
The thread is a daemon, so a program that never calls `close()` is not
kept alive by it; the doors close their portal at exit (`weakref.finalize`).

Only the loop's thread touches Trio objects; other threads see futures.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable, Generator
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, TypeVar

import trio

from keel.errors import KeelError

__all__ = ["CLOSE_TIMEOUT_S", "START_TIMEOUT_S", "Pending", "Portal"]

log = logging.getLogger("keel.client")

T = TypeVar("T")
R = TypeVar("R")

START_TIMEOUT_S = 30.0  # seconds for a new thread to start its loop and enter the resource (no I/O: it is lazy)
CLOSE_TIMEOUT_S = 10.0  # seconds `close()` waits for the loop to end: revokes and closes are each bounded below this


class Pending(Generic[T]):
    """One call handed to the loop: wait for it with `result()` (a thread) or `await` it (asyncio)."""

    def __init__(self, portal: Portal, fn: Callable[[Any], Awaitable[T]]) -> None:
        self.future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._portal = portal
        self._fn = fn
        self._scope: trio.CancelScope | None = None  # made and entered in the loop
        self._cancelled = False  # asked before the task started: it starts cancelled

    def result(self) -> T:
        """Block until the call ends; its value, or its exception raised here.

        An interrupt while waiting (Ctrl-C) cancels the call in the loop and is raised.
        """
        try:
            return self.future.result()
        except BaseException:
            if not self.future.done():
                self.cancel()
            raise

    def __await__(self) -> Generator[Any, None, T]:
        return self._wait_async().__await__()

    async def _wait_async(self) -> T:
        try:
            return await asyncio.wrap_future(self.future)
        except asyncio.CancelledError:
            self.cancel()
            raise

    def cancel(self) -> None:
        """Cancel the call in the loop (from any thread); it ends as soon as its cleanup allows."""
        self._portal.in_loop(self._cancel_in_loop)

    def _cancel_in_loop(self) -> None:
        self._cancelled = True
        if self._scope is not None:
            self._scope.cancel()

    async def _run(self, resource: Any) -> None:
        """The task in the loop: await the call and settle the future, whatever happens."""
        if not self.future.set_running_or_notify_cancel():
            return  # the future was cancelled before the loop reached it
        self._scope = trio.CancelScope()
        if self._cancelled:
            self._scope.cancel()
        try:
            with self._scope:
                value = await self._fn(resource)
                self.future.set_result(value)
                return
            self.future.set_exception(concurrent.futures.CancelledError())  # the waiter gave up
        except Exception as exc:  # everything the call raises is the waiter's to see
            self.future.set_exception(exc)
        except BaseException:  # cancelled from outside: the client is closing
            self.future.set_exception(KeelError("client: closed while the call ran"))
            raise


class Portal:
    """One daemon thread running a Trio loop that holds a resource and serves calls on it; see the module doc."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.finished: concurrent.futures.Future[None] = concurrent.futures.Future()  # set when trio.run returned
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._stop: trio.Event | None = None
        self._resource: Any = None
        self._lock = threading.Lock()  # guards `_pending` and `_ended`
        self._pending: set[Pending[Any]] = set()  # submitted, not settled yet
        self._ended = False
        self._thread: threading.Thread | None = None

    @classmethod
    def open(cls, resource: Callable[[], AbstractAsyncContextManager[R]], *, name: str) -> tuple[Portal, R]:
        """Start the thread, enter `resource()` in its loop; the portal and what the resource gave.

        Raises:
            KeelError: the loop did not start within `START_TIMEOUT_S`.
            Exception: whatever entering the resource raised.
        """
        portal = cls(name)
        ready: concurrent.futures.Future[R] = concurrent.futures.Future()
        portal._thread = threading.Thread(target=portal._main, args=(resource, ready), name=name, daemon=True)
        portal._thread.start()
        try:
            value = ready.result(timeout=START_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            portal.close(timeout=0)
            raise KeelError(f"{name}: its loop did not start within {START_TIMEOUT_S:g} s") from None
        return portal, value

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def in_loop_thread(self) -> bool:
        """Whether the caller runs on this portal's own thread."""
        return threading.current_thread() is self._thread

    def submit(self, fn: Callable[[Any], Awaitable[T]]) -> Pending[T]:
        """Run `fn(resource)` in the loop (from any thread but the loop's); the `Pending` to wait on."""
        call: Pending[T] = Pending(self, fn)
        with self._lock:
            if self._ended:
                call.future.set_exception(KeelError("client: closed"))
                return call
            self._pending.add(call)
        call.future.add_done_callback(lambda _: self._settled(call))
        self.in_loop(self._start, call)
        return call

    def spawn(self, fn: Callable[[Any], Awaitable[None]]) -> None:
        """Run `fn(resource)` in the loop until it returns or the portal closes (it must not raise)."""
        self.in_loop(self._start_background, fn)

    def close(self, *, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Stop the loop and wait up to `timeout` for its thread to end (not from the loop's thread). Idempotent."""
        self.request_stop()
        if self._thread is not None and not self.in_loop_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("%s: the loop did not end within %g s; leaving it to the interpreter", self.name, timeout)

    def request_stop(self) -> None:
        """Ask the loop to stop, without waiting (from any thread). Idempotent."""
        self.in_loop(self._stop_in_loop)

    def in_loop(self, fn: Callable[..., None], *args: Any) -> None:
        """Run the synchronous `fn(*args)` in the loop soon (from any thread); nothing if the loop has ended."""
        token = self._token
        if token is None:
            return
        try:
            token.run_sync_soon(self._guarded, fn, *args)
        except trio.RunFinishedError:
            pass  # the loop ended: `_main` failed whatever was pending

    # --- in the loop ------------------------------------------------------------------------------

    @staticmethod
    def _guarded(fn: Callable[..., None], *args: Any) -> None:
        # An exception out of a run_sync_soon callback would crash the whole loop.
        try:
            fn(*args)
        except Exception:
            log.exception("client loop: a callback failed")

    def _start(self, call: Pending[Any]) -> None:
        if self._nursery is None or self._stop is None or self._stop.is_set():
            call.future.set_exception(KeelError("client: closed"))
            return
        self._nursery.start_soon(call._run, self._resource)

    def _start_background(self, fn: Callable[[Any], Awaitable[None]]) -> None:
        if self._nursery is not None and self._stop is not None and not self._stop.is_set():
            self._nursery.start_soon(fn, self._resource)

    def _stop_in_loop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    def _settled(self, call: Pending[Any]) -> None:
        with self._lock:
            self._pending.discard(call)

    def _main(self, resource: Callable[[], AbstractAsyncContextManager[Any]],
              ready: concurrent.futures.Future[Any]) -> None:
        try:
            trio.run(self._serve, resource, ready)
        except BaseException as exc:  # noqa: BLE001 - this thread's end: report it, never raise into nothing
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else KeelError(f"{self.name}: {exc!r}"))
            else:
                log.error("%s: the client loop failed: %r", self.name, exc, exc_info=exc)
        finally:
            with self._lock:
                self._ended = True
                pending, self._pending = list(self._pending), set()
            for call in pending:
                if not call.future.done():
                    call.future.set_exception(KeelError("client: closed before the call ran"))
            self.finished.set_result(None)

    async def _serve(self, resource: Callable[[], AbstractAsyncContextManager[Any]],
                     ready: concurrent.futures.Future[Any]) -> None:
        self._stop = trio.Event()
        async with resource() as value, trio.open_nursery() as nursery:
            self._resource, self._nursery = value, nursery
            self._token = trio.lowlevel.current_trio_token()
            ready.set_result(value)
            await self._stop.wait()
            # Calls still running end now (their futures fail); then leaving the
            # resource revokes leases and closes connections, each step bounded.
            nursery.cancel_scope.cancel()

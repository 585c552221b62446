"""Watches and election observers for the doors: one item per call, or a callback per event.

A `Stream` hands out the items of an async step (a watcher's next event,
an observer's next leader) one call at a time: the step runs in the
client's loop, so the watch's state (its revision, the events received
but not handed out) lives there, and a watch resumes from its revision
across leader changes exactly as the async client's does. Two threads
asking one stream at once take turns (a lock in the loop), so no event is
handed out twice.

`WatchCallback` is a task in the loop that polls a watch and hands each
batch of events to the client's callback thread, waiting until the
callback ran before it asks for more: a slow callback slows its own watch
and fills no buffer. It goes on across leader changes and through a core
that stays silent past a call's deadline (it asks again from its
revision); any other error (`Compacted`, most often) is handed to the
callback in place of an event and ends the watch.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import trio

from keel.client.portal import Pending
from keel.client.watch import Watcher
from keel.core.api import Event
from keel.errors import KeelError, Unavailable

if TYPE_CHECKING:
    from keel.client.handle import ClientHandle

__all__ = ["Stream", "WatchCallback"]

log = logging.getLogger("keel.client")

T = TypeVar("T")


class Stream(Generic[T]):
    """The items of `step`, one per `next()` call, in the client's loop; see the module doc."""

    def __init__(self, handle: ClientHandle, step: Callable[[], Awaitable[T]]) -> None:
        self._handle = handle
        self._step = step
        self._turn = trio.Lock()  # used only in the loop

    def next(self) -> Pending[T]:
        """The next item, as a call."""
        return self._handle.call(self._next)

    def run(self, fn: Callable[[], Awaitable[T]]) -> Pending[T]:
        """Run `fn` in the loop in turn with `next()` (a watch's `start`)."""
        return self._handle.call(lambda _c: self._in_turn(fn))

    async def _next(self, _client: Any) -> T:
        return await self._in_turn(self._step)

    async def _in_turn(self, fn: Callable[[], Awaitable[T]]) -> T:
        async with self._turn:
            return await fn()


class WatchCallback:
    """A watch whose events go to `callback` on the client's callback thread; `cancel()` ends it.

    `callback(event)` gets each `Event` once, in order; `callback(error)`
    gets the `KeelError` that ended the watch, if one did.
    """

    def __init__(self, handle: ClientHandle, watcher: Watcher, callback: Callable[[Event | KeelError], object]) -> None:
        self._handle = handle
        self._watcher = watcher
        self._callback = callback
        self._scope = trio.CancelScope()  # entered in the loop
        self.cancelled = False

    @property
    def next_revision(self) -> int:
        """The revision the next poll asks from."""
        return self._watcher.next_revision

    def cancel(self) -> None:
        """Stop the watch (from any thread, a callback too); no callback starts after this returns."""
        self.cancelled = True
        self._handle.portal.in_loop(self._scope.cancel)

    async def run(self, _client: Any) -> None:
        """The watch's task in the loop, until cancelled or the client closes."""
        with self._scope:
            while True:
                try:
                    events = await self._watcher.batch()
                except Unavailable as exc:
                    log.warning("watch %r: %s; asking again from revision %d", self._watcher.cursor.key, exc,
                                self._watcher.next_revision)
                    continue
                except KeelError as exc:
                    await self._hand_over((exc,))
                    return
                await self._hand_over(events)

    async def _hand_over(self, items: tuple[Any, ...]) -> None:
        """Run the callback on each of `items` on the callback thread; return when it is done with them."""
        done = trio.Event()
        token = trio.lowlevel.current_trio_token()

        def deliver() -> None:
            try:
                for item in items:
                    if self.cancelled:
                        return
                    try:
                        self._callback(item)
                    except Exception:
                        log.exception("watch %r: the callback raised; going on", self._watcher.cursor.key)
            finally:
                try:
                    token.run_sync_soon(done.set)
                except trio.RunFinishedError:
                    pass  # the client closed meanwhile: nobody waits

        if self._handle.callbacks.submit(deliver):
            await done.wait()
        else:
            await trio.sleep_forever()  # the client is closing: its loop cancels this task

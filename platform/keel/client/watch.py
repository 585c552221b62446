"""Watching keys: every event once, in order, across reconnects and leader changes.

A watch is a chain of long polls (`api.Watch`), each asking from the
revision after the last event received; any node answers from the same
history, so a poll that fails (the node died, the leader changed) is
simply asked again, elsewhere, from the same revision. The cursor keeps
that revision and the events received but not yet handed out; it is plain
data, so the blocking client's iterator keeps it across `trio.run`s.

A watch from revision 0 starts after the revision the leader has when it
starts (one linearizable read): at its first poll, or earlier at
`await watcher.start()`. From then on it sees exactly the changes made
after that, whichever node its polls go to.
"""

from __future__ import annotations

from collections import deque

import attrs

from keel.client.caller import Caller
from keel.core.api import Event, Range, Watch, WatchReply
from keel.errors import KeelError

__all__ = ["WATCH_WAIT_S", "WatchCursor", "Watcher", "pin", "poll"]

WATCH_WAIT_S = 5.0  # seconds a node may hold one poll; a dead node's connection fails much sooner


@attrs.define
class WatchCursor:
    """Where a watch stands: the next revision to ask from and the events not yet handed out."""

    key: bytes
    prefix: bool = False
    next_revision: int = 0  # 0: not started yet
    pending: deque[Event] = attrs.Factory(deque)


async def poll(caller: Caller, cursor: WatchCursor) -> None:
    """One long poll; its events join `cursor.pending` (maybe none).

    Raises:
        Compacted: the cursor's revision was compacted away; read the
            current state and watch again from after it.
        Unavailable: no node answered within the caller's deadline.
    """
    start = await pin(caller, cursor)
    reply = await caller.read(Watch(cursor.key, cursor.prefix, start, WATCH_WAIT_S), leader=False,
                              wait=WATCH_WAIT_S)
    if not isinstance(reply, WatchReply):
        raise KeelError(f"watch: the node answered with {type(reply).__name__}")
    # After the await, in one step: a cancelled poll changes nothing. Events
    # below the start cannot come from a correct node; dropping them keeps "once".
    cursor.pending.extend(e for e in reply.events if e.kv.mod_revision >= start)
    cursor.next_revision = max(start, reply.next_revision)


async def pin(caller: Caller, cursor: WatchCursor) -> int:
    """Fix where a watch from revision 0 begins (after the leader's revision now); the next revision to ask from."""
    if cursor.next_revision == 0:
        read = await caller.read(Range(cursor.key, prefix=cursor.prefix, limit=1, keys_only=True))
        cursor.next_revision = cursor.next_revision or read.revision + 1
    return cursor.next_revision


class Watcher:
    """An async iterator of `Event`s on a key or prefix; see the module doc."""

    def __init__(self, caller: Caller, cursor: WatchCursor) -> None:
        self._caller = caller
        self.cursor = cursor

    @property
    def next_revision(self) -> int:
        """The revision the next poll asks from (0 before the first)."""
        return self.cursor.next_revision

    async def start(self) -> int:
        """Begin now rather than at the first poll; the revision the watch's events start from."""
        return await pin(self._caller, self.cursor)

    def __aiter__(self) -> Watcher:
        return self

    async def __anext__(self) -> Event:
        while not self.cursor.pending:
            await poll(self._caller, self.cursor)
        return self.cursor.pending.popleft()

    async def batch(self) -> tuple[Event, ...]:
        """Every event received so far and not handed out, waiting for at least one."""
        while not self.cursor.pending:
            await poll(self._caller, self.cursor)
        events = tuple(self.cursor.pending)
        self.cursor.pending.clear()
        return events

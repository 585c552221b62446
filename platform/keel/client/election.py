"""Elections: campaign until elected, see who leads, follow the leadership, resign.

A candidacy is a key under the election's prefix attached to a lease the
client keeps alive; the oldest candidacy leads. Leadership lasts as long
as that lease: when it is lost (`Election.lease.lost`), so is the
leadership. `observe` follows the leadership by watching the candidacies
and asking who leads after every change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from keel.client.caller import Caller
from keel.client.encoding import BytesLike, as_bytes
from keel.client.lease import Lease
from keel.client.lock import campaign
from keel.client.watch import WatchCursor, poll
from keel.core.api import CampaignReply, KeyValue, Leader, LeaderReply, Resign
from keel.errors import KeelError

if TYPE_CHECKING:
    from keel.client.async_client import AsyncClient

__all__ = ["DEFAULT_ELECTION_TTL_S", "ELECTION_PREFIX", "Election", "LeaderCursor", "LeaderObserver", "next_leader"]

# Where the core keeps an election's candidacies (keel.core.machine); the
# protocol does not name it, so watching the candidacies relies on it.
ELECTION_PREFIX = b"keel/election/"
DEFAULT_ELECTION_TTL_S = 10.0  # seconds a leader that stops keeping its lease alive keeps leading


class Election:
    """Election `name` as this client takes part in it."""

    def __init__(self, client: AsyncClient, name: BytesLike) -> None:
        self._client = client
        self.name = as_bytes(name, "election name")
        self.key: bytes | None = None  # this client's candidacy, once elected
        self.lease: Lease | None = None  # the candidacy's lease; its `lost` ends the leadership

    async def campaign(self, value: BytesLike, *, ttl: float = DEFAULT_ELECTION_TTL_S) -> CampaignReply:
        """Stand with `value` and return once elected (bound the wait with `trio.fail_after`).

        Raises:
            KeelError: this client already campaigned here and did not resign.
            LeaseExpired: the candidacy's lease was lost while waiting.
            Unavailable: the core did not answer one ask within the deadline.
        """
        if self.lease is not None:
            raise KeelError(f"election {self.name!r}: already campaigning here; resign first")
        lease = await self._client.grant_lease(ttl)
        try:
            reply = await campaign(self._client.caller, self.name, lease, as_bytes(value))
        except BaseException:
            await self._client.revoke_lease(lease, missing_ok=True)
            raise
        self.key, self.lease = reply.key, lease
        return reply

    async def resign(self) -> None:
        """Give up the candidacy (leading or not) and its lease. Nothing happens when there is none."""
        key, lease = self.key, self.lease
        self.key = self.lease = None
        if key is None or lease is None:
            return
        try:
            if lease.error is None:
                await self._client.caller.mutate(Resign(key))
        finally:
            await self._client.revoke_lease(lease, missing_ok=True)

    async def leader(self) -> KeyValue | None:
        """The leading candidacy (its `value` is what the leader proclaimed), None when nobody stands."""
        return (await _ask(self._client.caller, self.name)).leader

    def observe(self) -> LeaderObserver:
        """An async iterator: the leader now, then each new leader (None when nobody stands)."""
        return LeaderObserver(self._client.caller, self.name)


def _who(kv: KeyValue | None) -> tuple[bytes, int] | None:
    return None if kv is None else (kv.key, kv.create_revision)


@attrs.define
class LeaderCursor:
    """Where an observer of election `name` stands; plain data, so the blocking client keeps it across runs."""

    name: bytes
    watch: WatchCursor | None = None  # the candidacies, once the first leader was seen
    current: KeyValue | None = None  # the leader last handed out
    stale: bool = False  # candidacies changed since the leader was last asked


async def next_leader(caller: Caller, cursor: LeaderCursor) -> KeyValue | None:
    """The leader now on the first call; after that, the next leader different from the last one handed out.

    Raises:
        Unavailable: no node answered within the caller's deadline.
    """
    if cursor.watch is None:
        reply = await _ask(caller, cursor.name)
        cursor.watch = WatchCursor(ELECTION_PREFIX + cursor.name + b"/", prefix=True, next_revision=reply.revision + 1)
        cursor.current = reply.leader
        return reply.leader
    while True:
        if not cursor.stale:
            while not cursor.watch.pending:
                await poll(caller, cursor.watch)
            cursor.watch.pending.clear()
            cursor.stale = True  # if asking fails now, the next call asks before waiting again
        reply = await _ask(caller, cursor.name)
        cursor.stale = False
        if _who(reply.leader) != _who(cursor.current):
            cursor.current = reply.leader
            return reply.leader


async def _ask(caller: Caller, name: bytes) -> LeaderReply:
    reply = await caller.read(Leader(name))
    if not isinstance(reply, LeaderReply):
        raise KeelError(f"election {name!r}: the node answered with {type(reply).__name__}")
    return reply


class LeaderObserver:
    """An async iterator of an election's leaders, each change once; see `Election.observe`."""

    def __init__(self, caller: Caller, name: bytes) -> None:
        self._caller = caller
        self.cursor = LeaderCursor(name)

    def __aiter__(self) -> LeaderObserver:
        return self

    async def __anext__(self) -> KeyValue | None:
        return await next_leader(self._caller, self.cursor)

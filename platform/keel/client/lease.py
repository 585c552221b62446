"""Leases: granted by the core, kept alive by the client, lost loudly.

A lease lives at the leader for `ttl` seconds after its last keep-alive.
The client sends one every `ttl / 3` (`KEEPALIVE_FRACTION`), following the
leader through elections. It counts the lease alive until `ttl` after the
moment it *sent* the last keep-alive that was confirmed: the leader
restarted the clock later than that, so the client never believes in a
lease the core has already ended (clock rates assumed equal).

The lease is lost when the core says so (`LeaseExpired`: expired or
revoked) or when no keep-alive is confirmed before that bound; then
`lost` is set, `error` says why, and whoever asked to be told (a lease's
context manager, which cancels its body) is told.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import trio

from keel.client.caller import Caller
from keel.core.api import LeaseKeepAlive, LeaseRevoke
from keel.errors import KeelError, LeaseExpired

__all__ = ["KEEPALIVE_FRACTION", "REVOKE_GRACE_S", "Lease", "refresh"]

log = logging.getLogger("keel.client")

KEEPALIVE_FRACTION = 1 / 3  # of the ttl between keep-alives: two may fail before the lease ends
REVOKE_GRACE_S = 2.0  # seconds a revoke on the way out may take; past it the lease ends by its ttl


class Lease:
    """A lease of the core; see the module doc.

    Attributes:
        id: the lease id, for `put(..., lease=)` and compares.
        ttl: seconds the lease lives without keep-alives.
        lost: set once the lease is gone (or cannot be confirmed alive).
        error: the `LeaseExpired` that says why, once lost.
    """

    def __init__(self, id: int, ttl: float, *, confirmed_at: float) -> None:
        self.id = id
        self.ttl = ttl
        self.lost = trio.Event()
        self.error: LeaseExpired | None = None
        self.confirmed_at = confirmed_at  # client clock when the last confirmed request was sent
        self.revoked = False
        self._watchers: list[Callable[[], None]] = []
        self._keeping = trio.CancelScope()

    def __repr__(self) -> str:
        state = "lost" if self.lost.is_set() else "revoked" if self.revoked else "alive"
        return f"Lease(id={self.id}, ttl={self.ttl:g}, {state})"

    @property
    def deadline(self) -> float:
        """Client time (`trio.current_time`) until which the lease is surely alive."""
        return self.confirmed_at + self.ttl

    def on_lost(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` (synchronously, once) when the lease is lost; returns what undoes it."""
        self._watchers.append(callback)
        return lambda: self._watchers.remove(callback) if callback in self._watchers else None

    def check(self) -> None:
        """Raise the `LeaseExpired` that ended the lease, if it ended."""
        if self.error is not None:
            raise self.error

    def lose(self, error: LeaseExpired) -> None:
        """The lease is gone: say so to everyone who asked."""
        if self.error is not None:
            return
        self.error = error
        self.lost.set()
        self._keeping.cancel()
        watchers, self._watchers = self._watchers, []
        for callback in watchers:
            callback()

    async def keep_alive(self, caller: Caller) -> None:
        """Send keep-alives until the lease is revoked or lost (a task in the client's nursery)."""
        with self._keeping:
            while True:
                await trio.sleep_until(self.confirmed_at + self.ttl * KEEPALIVE_FRACTION)
                await refresh(caller, self)
                if self.error is not None:
                    return

    async def revoke(self, caller: Caller) -> None:
        """Stop the keep-alives and end the lease at the core (best effort, bounded).

        A lease already lost is left alone. A revoke the core cannot take in
        `REVOKE_GRACE_S` is given up: nobody keeps the lease alive any more,
        so it ends by itself within its ttl.

        Raises:
            LeaseExpired: the core had already ended the lease (it was lost
                meanwhile, unnoticed).
        """
        self._keeping.cancel()
        if self.revoked or self.error is not None:
            return
        self.revoked = True
        with trio.move_on_after(REVOKE_GRACE_S, shield=True) as scope:
            try:
                await caller.mutate(LeaseRevoke(self.id), deadline=REVOKE_GRACE_S)
            except LeaseExpired as exc:
                self.lose(exc)
                raise
            except KeelError as exc:  # Unavailable, mostly
                log.warning("lease %d: revoke failed (%s); it ends by itself within %g s", self.id, exc, self.ttl)
        if scope.cancelled_caught:
            log.warning("lease %d: revoke took over %g s; it ends by itself within %g s",
                        self.id, REVOKE_GRACE_S, self.ttl)


async def refresh(caller: Caller, lease: Any, *, clock: Callable[[], float] = trio.current_time) -> None:
    """One keep-alive for `lease`, retried until its deadline; marks it lost when it cannot be confirmed.

    `lease` is a `Lease` or anything with its `id`, `ttl`, `confirmed_at`,
    `deadline` and `lose` (the blocking client's leases, on `time.monotonic`);
    `clock` is the clock its times are on.
    """
    sent = clock()
    left = lease.deadline - sent
    if left <= 0:
        lease.lose(LeaseExpired(f"lease {lease.id}: no keep-alive confirmed within its ttl of {lease.ttl:g} s"))
        return
    try:
        await caller.read(LeaseKeepAlive(lease.id), deadline=left)
    except LeaseExpired as exc:
        lease.lose(exc)
    except KeelError as exc:  # Unavailable until the deadline, mostly: the core may have ended it meanwhile
        lease.lose(LeaseExpired(f"lease {lease.id}: no keep-alive confirmed within its ttl of {lease.ttl:g} s "
                                f"({exc})"))
    else:
        lease.confirmed_at = max(lease.confirmed_at, sent)

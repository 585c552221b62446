"""Leases: a TTL that keeps keys alive while their owner keeps talking.

Two halves, because only one of them may be replicated:

- `LeaseTable` is state-machine state, the same on every node: which leases
  exist, their TTL, and the keys attached to each. It changes only through
  the log: a grant, a revoke, and an expiry are commands.
- `LeaseClock` is the leader's own: when each lease runs out, by the
  leader's monotonic clock. Keep-alives restart a lease's clock at the
  leader without touching the log. When a lease runs out, the leader
  proposes its expiry as a command, so every node deletes its keys at the
  same index. A new leader knows no clocks, so it starts every lease afresh
  (`restart`): a lease may live up to one TTL longer across a leader
  change, and never ends early, since the new leader's clock starts after
  the old leader stopped leading, so after every keep-alive it answered.
"""

from __future__ import annotations

import attrs

__all__ = ["Lease", "LeaseClock", "LeaseTable", "MAX_TTL_S", "MIN_TTL_S"]

MIN_TTL_S = 0.05  # seconds; shorter than a heartbeat or two would expire leases between keep-alives
MAX_TTL_S = 10 * 365 * 86400.0  # seconds; ten years, a lease that is practically forever


@attrs.define
class Lease:
    id: int
    ttl: float  # seconds
    granted: int = 0  # the log index of its grant: which lease of this id an expiry means
    keys: set[bytes] = attrs.Factory(set)


class LeaseTable:
    """The leases that exist and their keys; changed only by applying commands."""

    def __init__(self) -> None:
        self.leases: dict[int, Lease] = {}
        self.next_id = 1  # ids the machine picks; a client may choose its own

    def __contains__(self, lease_id: int) -> bool:
        return lease_id in self.leases

    def __len__(self) -> int:
        return len(self.leases)

    def grant(self, ttl: float, lease_id: int = 0, *, granted: int = 0) -> Lease:
        """Create a lease (`lease_id` 0: the next free id).

        Raises:
            ValueError: the TTL is out of range, or the id is taken or negative.
        """
        if not MIN_TTL_S <= ttl <= MAX_TTL_S:
            raise ValueError(f"lease ttl {ttl:g} s is outside {MIN_TTL_S:g}…{MAX_TTL_S:g} s")
        if lease_id < 0:
            raise ValueError(f"lease id {lease_id} is negative")
        if lease_id == 0:
            while self.next_id in self.leases:
                self.next_id += 1
            lease_id = self.next_id
            self.next_id += 1
        elif lease_id in self.leases:
            raise ValueError(f"lease {lease_id} already exists")
        lease = self.leases[lease_id] = Lease(lease_id, ttl, granted)
        return lease

    def remove(self, lease_id: int) -> Lease | None:
        """Forget a lease; returns it (its keys are the caller's to delete), None if it did not exist."""
        return self.leases.pop(lease_id, None)

    def attach(self, key: bytes, old: int, new: int) -> None:
        """`key` moved from lease `old` to lease `new` (0: none)."""
        if old == new:
            return
        if old in self.leases:
            self.leases[old].keys.discard(key)
        if new in self.leases:
            self.leases[new].keys.add(key)

    def dump(self) -> tuple[int, list[tuple[int, float, int, list[bytes]]]]:
        return self.next_id, [(lease.id, lease.ttl, lease.granted, sorted(lease.keys)) for lease in sorted(
            self.leases.values(), key=lambda lease: lease.id)]

    def load(self, next_id: int, leases: list[tuple[int, float, int, list[bytes]]]) -> None:
        self.next_id = next_id
        self.leases = {lease_id: Lease(lease_id, ttl, granted, set(keys)) for lease_id, ttl, granted, keys in leases}


class LeaseClock:
    """The leader's deadlines for each lease, by its own clock; empty on other nodes."""

    def __init__(self) -> None:
        self.deadlines: dict[int, float] = {}
        self.proposed: dict[int, float] = {}  # expiries proposed, by when; proposed again if not applied by then

    def restart(self, table: LeaseTable, now: float) -> None:
        """Leadership began: every lease gets its whole TTL from now."""
        self.deadlines = {lease.id: now + lease.ttl for lease in table.leases.values()}
        self.proposed = {}

    def stop(self) -> None:
        """Leadership ended: the next leader keeps the clocks."""
        self.deadlines = {}
        self.proposed = {}

    def refresh(self, lease: Lease, now: float) -> None:
        """A grant was applied, or a keep-alive arrived: the lease lives `ttl` from now."""
        self.deadlines[lease.id] = now + lease.ttl
        self.proposed.pop(lease.id, None)

    def running_out(self, lease_id: int, now: float) -> bool:
        """Whether the lease is past its deadline or its expiry was proposed: too late to keep it alive."""
        return lease_id in self.proposed or self.deadlines.get(lease_id, now + 1.0) <= now

    def forget(self, lease_id: int) -> None:
        self.deadlines.pop(lease_id, None)
        self.proposed.pop(lease_id, None)

    def expired(self, now: float, retry: float) -> list[int]:
        """Leases past their deadline whose expiry should be proposed now, lowest id first.

        An expiry proposed but not applied within `retry` seconds (lost with
        a failed append) is proposed again.
        """
        due = []
        for lease_id, deadline in sorted(self.deadlines.items()):
            # Not yet proposed: due at its deadline (not at time 0.0, as the driver's clock may start anywhere).
            if now >= deadline and now >= self.proposed.get(lease_id, deadline):
                due.append(lease_id)
                self.proposed[lease_id] = now + retry
        return due

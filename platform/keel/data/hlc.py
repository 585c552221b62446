"""Hybrid logical clocks: timestamps that follow physical time and never go back.

Theory of operation (Kulkarni et al., "Logical Physical Clocks", 2014). A
timestamp is `(wall, logical, node)`: `wall` is the largest physical time,
in microseconds since the Unix epoch, that the clock has seen, its own or
in a timestamp it received; `logical` counts events within one `wall`; the
node id breaks the remaining ties, so two nodes never issue equal
timestamps. The rules the clock keeps:

- `now(physical)` issues a timestamp above every timestamp it issued or
  observed, and at least `physical` when the node's clock runs ahead;
- `observe(seen, physical)` moves the clock past a timestamp that arrived
  from elsewhere, so anything the node issues afterwards orders after it
  (a write that read a record is stamped above that record);
- the clock never goes back across restarts: the runtime persists
  `high_water` with every batch of records it writes and starts the next
  incarnation from it (`HybridClock(node, floor=...)`). A timestamp only
  matters once something carrying it is durable, and then `high_water`,
  written in the same transaction, is durable too.

A peer whose physical clock runs far ahead drags every clock it talks to
along (its writes win last-writer-wins until real time catches up); the
clock refuses to observe a timestamp more than `max_ahead` beyond its own
physical time (`ClockAhead`), as CockroachDB bounds its offset, so one bad
clock cannot push the cluster's timestamps into the future.

Sans-I/O: the driver passes physical time in; nothing here reads a clock.
"""

from __future__ import annotations

import attrs

from keel.errors import KeelError

__all__ = ["DEFAULT_MAX_AHEAD_US", "ClockAhead", "HybridClock", "Timestamp"]

DEFAULT_MAX_AHEAD_US = 5_000_000  # microseconds a received timestamp may be ahead of our clock; NTP keeps far closer


class ClockAhead(KeelError):
    """A timestamp from another node is further ahead of this node's clock than the bound allows."""


@attrs.frozen(order=True)
class Timestamp:
    """A point in hybrid logical time; ordered by wall, then logical, then node id."""

    wall: int  # microseconds since the Unix epoch
    logical: int
    node: str

    def to_plain(self) -> list[int | str]:
        """The timestamp as plain CBOR data, as records carry it."""
        return [self.wall, self.logical, self.node]

    @classmethod
    def from_plain(cls, raw: object) -> Timestamp:
        """The timestamp `to_plain` gave.

        Raises:
            ValueError: `raw` is not `[wall, logical, node]` with two
                non-negative ints and a str.
        """
        if not (isinstance(raw, (list, tuple)) and len(raw) == 3 and all(type(v) is int and v >= 0 for v in raw[:2])
                and isinstance(raw[2], str)):
            raise ValueError(f"a timestamp is [wall, logical, node], not {raw!r}")
        return cls(raw[0], raw[1], raw[2])


class HybridClock:
    """One node's hybrid logical clock."""

    def __init__(self, node: str, *, floor: int = 0, max_ahead: int = DEFAULT_MAX_AHEAD_US) -> None:
        """Start the clock above `floor`, the `high_water` a previous incarnation persisted (0: none)."""
        self.node = node
        self.max_ahead = max_ahead
        # Past the floor's whole microsecond: the last incarnation may have counted logical time in it.
        self._wall = floor + 1 if floor else 0
        self._logical = 0

    @property
    def high_water(self) -> int:
        """The wall of the latest timestamp issued or observed: persist it, start the next incarnation there."""
        return self._wall

    def now(self, physical: int) -> Timestamp:
        """A new timestamp, above every one issued or observed before; `physical` in microseconds."""
        if physical > self._wall:
            self._wall, self._logical = physical, 0
        else:
            self._logical += 1
        return Timestamp(self._wall, self._logical, self.node)

    def observe(self, seen: Timestamp, physical: int) -> None:
        """Move past `seen`, a timestamp that came from elsewhere.

        Raises:
            ClockAhead: `seen` is more than `max_ahead` beyond `physical`;
                the clock did not move.
        """
        if seen.wall - physical > self.max_ahead:
            raise ClockAhead(f"timestamp from {seen.node} is {(seen.wall - physical) / 1e6:.3f} s ahead of this "
                             f"node's clock, beyond the {self.max_ahead / 1e6:g} s allowed; check its clock (NTP)")
        if (seen.wall, seen.logical) > (self._wall, self._logical):
            self._wall, self._logical = seen.wall, seen.logical

"""A node's view of time: a skewed, drifting, never-decreasing clock over virtual time.

Node `n` reads `offset + rate * t` at virtual time `t`. A `Skew` fault changes
`offset` and `rate` at once; a change that would move the reading backwards
holds the clock still until the new line catches up, because engines use
`now` as a monotonic clock for timeouts and leases, and a real node's
monotonic clock never steps back either. The clock belongs to the machine,
so it keeps running, and keeps its skew, across crashes and restarts.
"""

from __future__ import annotations

import attrs

__all__ = ["NodeClock"]


@attrs.define
class NodeClock:
    """The local clock of one simulated node."""

    offset: float = 0.0  # seconds added to virtual time
    rate: float = 1.0  # local seconds per virtual second; > 0
    _last: float = float("-inf")  # the highest reading handed out

    def read(self, virtual: float) -> float:
        """Hand the node its local time at virtual time `virtual`, never below an earlier reading."""
        self._last = self.peek(virtual)
        return self._last

    def peek(self, virtual: float) -> float:
        """What `read` would return, without counting as a reading (for observers)."""
        return max(self._last, self.offset + self.rate * virtual)

    def virtual_interval(self, local_seconds: float) -> float:
        """How much virtual time passes while this clock advances `local_seconds`."""
        return local_seconds / self.rate

    def skew(self, offset: float, rate: float) -> None:
        """Set a new offset and rate from now on."""
        if rate <= 0:
            raise ValueError(f"clock rate {rate} must be above 0")
        self.offset = offset
        self.rate = rate

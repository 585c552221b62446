"""Delays between a call's attempts: exponential, capped, jittered."""

from __future__ import annotations

import random

__all__ = ["BACKOFF_INITIAL_S", "BACKOFF_MAX_S", "Backoff"]

BACKOFF_INITIAL_S = 0.05  # seconds; about one heartbeat, so a settled election is found at once
BACKOFF_MAX_S = 1.0  # seconds; a few election timeouts, so a recovering core is found within a second
BACKOFF_JITTER = 0.5  # up to this fraction of a delay is shaved off, so clients that failed together spread out


class Backoff:
    """The delays of one call: each `next()` doubles the ceiling, up to `BACKOFF_MAX_S`."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._ceiling = BACKOFF_INITIAL_S

    def next(self) -> float:
        """Seconds to wait before the next attempt."""
        ceiling = self._ceiling
        self._ceiling = min(BACKOFF_MAX_S, ceiling * 2)
        return ceiling * (1 - BACKOFF_JITTER * self._rng.random())

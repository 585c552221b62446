"""Redial delays: exponential, capped, with jitter."""

from __future__ import annotations

import random

from keel_transport_tcp.options import TcpOptions

__all__ = ["Backoff"]


class Backoff:
    """The delays between attempts to reach one peer.

    Each failure doubles the delay up to `backoff_max`; a random fraction
    (`backoff_jitter`) of each delay is shaved off so that nodes which lost
    the same peer at the same moment spread their redials.
    """

    def __init__(self, options: TcpOptions, rng: random.Random) -> None:
        self._initial = options.backoff_initial
        self._cap = options.backoff_max
        self._jitter = options.backoff_jitter
        self._rng = rng
        self._ceiling = self._initial

    def next(self) -> float:
        """Seconds to wait before the next attempt; grows with each call."""
        ceiling = self._ceiling
        self._ceiling = min(self._cap, ceiling * 2)
        return ceiling * (1 - self._jitter * self._rng.random())

    def reset(self) -> None:
        """The peer answered: start again from the shortest delay."""
        self._ceiling = self._initial

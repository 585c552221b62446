"""Redial delays grow exponentially up to the cap, jittered, and reset on contact."""

from __future__ import annotations

import random

from keel_transport_tcp.backoff import Backoff
from keel_transport_tcp.options import TcpOptions

OPTIONS = TcpOptions(backoff_initial=0.1, backoff_max=3.0, backoff_jitter=0.5)


def test_delays_double_up_to_the_cap_within_the_jitter(seed):
    backoff = Backoff(OPTIONS, random.Random(seed))
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.6, 3.0, 3.0, 3.0]
    for ceiling in ceilings:
        assert ceiling * (1 - OPTIONS.backoff_jitter) <= backoff.next() <= ceiling


def test_reset_starts_again_from_the_initial_delay(seed):
    backoff = Backoff(OPTIONS, random.Random(seed))
    for _ in range(10):
        backoff.next()
    backoff.reset()
    assert backoff.next() <= OPTIONS.backoff_initial


def test_without_jitter_the_delays_are_exact(seed):
    backoff = Backoff(TcpOptions(backoff_initial=0.5, backoff_max=1.0, backoff_jitter=0.0), random.Random(seed))
    assert [backoff.next() for _ in range(3)] == [0.5, 1.0, 1.0]

"""`[transport.options]` of the TCP transport: backoff, keepalive and deadlines."""

from __future__ import annotations

import math
from typing import Any

import attrs

__all__ = ["TcpOptions"]


def _float(value: Any) -> Any:
    # TOML writes `1` for one second; accept it without accepting `true`.
    return float(value) if type(value) is int else value


def _positive_seconds(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if type(value) is not float or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{value!r} is not a positive, finite number of seconds")


def _fraction(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if type(value) is not float or not 0.0 <= value <= 1.0:
        raise ValueError(f"{value!r} is not a fraction from 0 to 1")


def _count(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if type(value) is not int or value < 1:
        raise ValueError(f"{value!r} is not a whole number of at least 1")


def _seconds(default: float) -> Any:
    return attrs.field(default=default, converter=_float, validator=_positive_seconds)


@attrs.frozen(kw_only=True)
class TcpOptions:
    """How the TCP transport dials, keeps links alive and gives up on them.

    Every duration is in seconds.
    """

    backoff_initial: float = _seconds(0.05)  # first redial delay; short, so a restarted peer is back quickly
    backoff_max: float = _seconds(5.0)  # cap on the redial delay, so a long-dead peer is still retried
    # Fraction of each delay drawn at random, so peers that lost a node together
    # do not redial it in lockstep.
    backoff_jitter: float = attrs.field(default=0.5, converter=_float, validator=_fraction)
    handshake_timeout: float = _seconds(5.0)  # TLS handshake plus hello exchange on a new connection
    keepalive_interval: float = _seconds(1.0)  # an idle link sends a ping this often
    idle_timeout: float = _seconds(5.0)  # a link that hears nothing (not even a ping) this long is dead
    write_timeout: float = _seconds(5.0)  # one batch of frames not written by then: the peer is stuck
    max_client_requests: int = attrs.field(default=64, validator=_count)  # in flight per client connection

    @backoff_max.validator
    def _not_below_initial(self, attribute: attrs.Attribute, value: float) -> None:
        if value < self.backoff_initial:
            raise ValueError(f"{value:g} is below backoff_initial ({self.backoff_initial:g})")

    @idle_timeout.validator
    def _outlasts_keepalives(self, attribute: attrs.Attribute, value: float) -> None:
        # A healthy idle link hears a ping every keepalive_interval; a timeout
        # shorter than two of them would close links that are merely quiet.
        if value < 2 * self.keepalive_interval:
            raise ValueError(f"{value:g} is below 2 × keepalive_interval ({self.keepalive_interval:g})")

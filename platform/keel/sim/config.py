"""How a simulation runs when no fault says otherwise.

The defaults model a healthy local network and an SSD: millisecond message
delays (wide enough that messages reorder), no loss, no duplication, and
fsyncs of a millisecond or two. Faults change the network from there; `Calm`
returns to these values.
"""

from __future__ import annotations

import attrs
from attrs.validators import ge, gt, instance_of, le

__all__ = ["SimConfig"]

TICK_INTERVAL_S = 0.01  # seconds of node-local time between ticks; a tenth of a typical heartbeat
DELAY_S = (0.001, 0.010)  # seconds one way; overlapping draws reorder messages sent close together
FSYNC_S = (0.0005, 0.002)  # seconds per fsync; an SSD's flush


def _range(instance: object, attribute: attrs.Attribute, value: tuple[float, float]) -> None:
    low, high = value
    if not 0 <= low <= high:
        raise ValueError(f"{attribute.name}: ({low}, {high}) is not a range 0 <= low <= high")


def _pair(value: tuple[float, float]) -> tuple[float, float]:
    low, high = value
    return (float(low), float(high))


def _optional_range(instance: object, attribute: attrs.Attribute, value: tuple[float, float] | None) -> None:
    if value is not None:
        _range(instance, attribute, value)


def _optional_pair(value: tuple[float, float] | None) -> tuple[float, float] | None:
    return None if value is None else _pair(value)


@attrs.frozen(kw_only=True)
class SimConfig:
    """The baseline of one simulation."""

    tick_interval: float = attrs.field(default=TICK_INTERVAL_S, converter=float, validator=gt(0.0))
    delay: tuple[float, float] = attrs.field(default=DELAY_S, converter=_pair, validator=_range)
    loss: float = attrs.field(default=0.0, converter=float, validator=[ge(0.0), le(1.0)])
    duplicate: float = attrs.field(default=0.0, converter=float, validator=[ge(0.0), le(1.0)])
    fsync: tuple[float, float] = attrs.field(default=FSYNC_S, converter=_pair, validator=_range)
    wire_only: bool = attrs.field(default=False, validator=instance_of(bool))  # refuse unregistered messages and records
    # Seconds between a message's arrival and the poll that reports it, as a runtime that wakes one
    # poller per burst of inputs (keel.core.runtime): messages arriving meanwhile are all received
    # before that poll, so a node sees inputs while an earlier one's effects are still unreported.
    # None: poll after every input.
    poll_lag: tuple[float, float] | None = attrs.field(default=None, converter=_optional_pair,
                                                       validator=_optional_range)

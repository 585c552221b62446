"""Faults as data: what can go wrong, and when.

A fault schedule is a tuple of `At(time, fault)`; the simulation applies each
fault at its virtual time (seconds), in time order and, at equal times, in
the order listed. Because a schedule is plain frozen data, a test can name
it, print it, compare it and build it by hand, by `random_schedule`, or by
hypothesis.

Faults are idempotent where that is cheap: crashing a node that is down or
restarting one that is up does nothing (and the trace says so). Network
faults replace state rather than stack: a new `Partition` replaces the old
one, `Heal` ends the partition and every `Cut`, and `Calm` brings loss,
duplication and delay back to the simulation's configured baseline.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Union

import attrs
from attrs.validators import ge, gt, instance_of, le

__all__ = [
    "At",
    "Calm",
    "Crash",
    "Cut",
    "Delay",
    "Duplicate",
    "Fault",
    "FaultSchedule",
    "Heal",
    "Loss",
    "Partition",
    "Restart",
    "Skew",
]

_probability = [instance_of(float), ge(0.0), le(1.0)]


def _groups(value: Iterable[Iterable[str]]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(sorted(group)) for group in value)


@attrs.frozen
class Crash:
    """Stop `node` now: unsynced records, held sends and timers are lost."""

    node: str


@attrs.frozen
class Restart:
    """Rebuild a crashed `node` from its durable records."""

    node: str


@attrs.frozen
class Partition:
    """Split the network: messages between nodes of different groups are dropped, both ways.

    A node named in no group is not affected (so clients can keep reaching
    every server); to isolate a node, give it a group of its own.
    """

    groups: tuple[tuple[str, ...], ...] = attrs.field(converter=_groups)

    @groups.validator
    def _disjoint(self, attribute: attrs.Attribute, value: tuple[tuple[str, ...], ...]) -> None:
        seen: set[str] = set()
        for group in value:
            twice = seen.intersection(group)
            if twice:
                raise ValueError(f"partition: {sorted(twice)[0]} is in two groups")
            seen.update(group)


@attrs.frozen
class Cut:
    """Drop every message from `src` to `dst` (one way) until `Heal`."""

    src: str
    dst: str


@attrs.frozen
class Heal:
    """End the partition and every cut."""


@attrs.frozen
class Loss:
    """From now on drop each message with probability `rate`."""

    rate: float = attrs.field(converter=float, validator=_probability)


@attrs.frozen
class Duplicate:
    """From now on deliver each message twice with probability `rate`."""

    rate: float = attrs.field(converter=float, validator=_probability)


@attrs.frozen
class Delay:
    """From now on delay each message by a uniform draw from [low, high] seconds."""

    low: float = attrs.field(converter=float, validator=[instance_of(float), ge(0.0)])
    high: float = attrs.field(converter=float, validator=[instance_of(float), ge(0.0)])

    @high.validator
    def _ordered(self, attribute: attrs.Attribute, value: float) -> None:
        if value < self.low:
            raise ValueError(f"delay: high {value} is below low {self.low}")


@attrs.frozen
class Calm:
    """Restore loss, duplication and delay to the simulation's baseline."""


@attrs.frozen
class Skew:
    """From now on `node`'s clock reads `offset + rate * t` (never going backwards)."""

    node: str
    offset: float = attrs.field(default=0.0, converter=float)  # seconds
    rate: float = attrs.field(default=1.0, converter=float, validator=gt(0.0))  # local seconds per virtual second


Fault = Union[Crash, Restart, Partition, Cut, Heal, Loss, Duplicate, Delay, Calm, Skew]
FAULT_TYPES = (Crash, Restart, Partition, Cut, Heal, Loss, Duplicate, Delay, Calm, Skew)


def _fault(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if not isinstance(value, FAULT_TYPES):
        raise TypeError(f"{value!r} is not a fault")


@attrs.frozen
class At:
    """Apply `fault` at virtual time `time` (seconds)."""

    time: float = attrs.field(converter=float, validator=ge(0.0))
    fault: Fault = attrs.field(validator=_fault)


def _timed(events: Iterable[At]) -> tuple[At, ...]:
    # A stable sort keeps the listed order among faults at the same time.
    return tuple(sorted(events, key=lambda e: e.time))


@attrs.frozen
class FaultSchedule:
    """Timed faults, in the order they apply."""

    events: tuple[At, ...] = attrs.field(default=(), converter=_timed)

    def __add__(self, other: FaultSchedule) -> FaultSchedule:
        return FaultSchedule(self.events + other.events)

    def nodes(self) -> frozenset[str]:
        """Every node id the schedule names."""
        names: set[str] = set()
        for event in self.events:
            fault = event.fault
            if isinstance(fault, Partition):
                names.update(n for group in fault.groups for n in group)
            elif isinstance(fault, Cut):
                names.update((fault.src, fault.dst))
            elif isinstance(fault, (Crash, Restart, Skew)):
                names.add(fault.node)
        return frozenset(names)

    def describe(self) -> str:
        """One line per fault, for people reading a failing run."""
        return "\n".join(f"{e.time:10.6f}  {e.fault!r}" for e in self.events)

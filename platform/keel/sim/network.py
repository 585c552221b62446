"""The virtual network: which messages arrive, how many times, and when.

Every message is judged when it is sent and again when it would arrive: a
partition or cut that is in force at either moment drops it, so a partition
also swallows what was already in flight. Otherwise it is lost with the
current loss probability, else delivered after a delay drawn uniformly from
the current range (overlapping draws reorder messages, as UDP or a
reconnecting TCP link would), and with the duplication probability a second
copy follows with its own delay.

Random draws happen in a fixed order per message (loss, duplication, one
delay per copy), all from the simulation's one `random.Random`, so the same
seed and the same sends give the same fates.
"""

from __future__ import annotations

import random

import attrs

from keel.sim.config import SimConfig
from keel.sim.faults import Calm, Cut, Delay, Duplicate, Fault, Heal, Loss, Partition

__all__ = ["Fate", "Network"]

PARTITION = "partition"  # drop reasons, as they appear in the trace
CUT = "cut"
LOSS = "loss"


@attrs.frozen
class Fate:
    """What happens to one message: dropped (with a reason), or arriving after each delay."""

    dropped: str | None  # reason, or None when it arrives
    delays: tuple[float, ...]  # seconds after sending; two entries when duplicated


@attrs.define
class Network:
    """Link state (partition, cuts) and quality (loss, duplication, delay)."""

    baseline: SimConfig
    loss: float = 0.0
    duplicate: float = 0.0
    delay: tuple[float, float] = (0.0, 0.0)
    _group_of: dict[str, int] = attrs.Factory(dict)  # node -> its group under the current partition
    _cuts: set[tuple[str, str]] = attrs.Factory(set)  # (src, dst) links dropping everything

    def __attrs_post_init__(self) -> None:
        self.calm()

    def calm(self) -> None:
        """Back to the baseline loss, duplication and delay."""
        self.loss, self.duplicate, self.delay = self.baseline.loss, self.baseline.duplicate, self.baseline.delay

    def apply(self, fault: Fault) -> None:
        """Carry out a network fault."""
        if isinstance(fault, Partition):
            self._group_of = {node: i for i, group in enumerate(fault.groups) for node in group}
        elif isinstance(fault, Cut):
            self._cuts.add((fault.src, fault.dst))
        elif isinstance(fault, Heal):
            self._group_of.clear()
            self._cuts.clear()
        elif isinstance(fault, Loss):
            self.loss = fault.rate
        elif isinstance(fault, Duplicate):
            self.duplicate = fault.rate
        elif isinstance(fault, Delay):
            self.delay = (fault.low, fault.high)
        elif isinstance(fault, Calm):
            self.calm()
        else:
            raise TypeError(f"{fault!r} is not a network fault")

    def blocked(self, src: str, dst: str) -> str | None:
        """Why the link from `src` to `dst` drops everything now, or None when it is open."""
        if (src, dst) in self._cuts:
            return CUT
        mine, theirs = self._group_of.get(src), self._group_of.get(dst)
        if mine is not None and theirs is not None and mine != theirs:
            return PARTITION
        return None

    def fate(self, rng: random.Random, src: str, dst: str) -> Fate:
        """Decide what happens to a message `src` sends to `dst` now."""
        reason = self.blocked(src, dst)
        if reason is not None:
            return Fate(dropped=reason, delays=())
        lost = rng.random() < self.loss
        doubled = rng.random() < self.duplicate
        if lost:
            return Fate(dropped=LOSS, delays=())
        copies = 2 if doubled else 1
        return Fate(dropped=None, delays=tuple(rng.uniform(*self.delay) for _ in range(copies)))

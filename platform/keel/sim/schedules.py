"""Fault schedules made for you: seeded random mixes, and a few named classics.

Every builder takes `(rng, nodes, duration)` and returns a `FaultSchedule`
whose faults all end by `duration`: crashed nodes are restarted, partitions
and cuts healed, the network calm and clocks unskewed, so a test can check
liveness (a leader, converged replicas) after running past it. Builders use
only the `random.Random` given, so the same seed gives the same schedule.

`random_schedule` keeps at most a minority of nodes down at once by default,
because a test that expects progress needs a quorum; pass `max_down` to be
crueler. Episodes of one family never overlap (one partition or cut at a
time, one network degradation at a time, one skew per node at a time), since
`Heal` and `Calm` end their whole family.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

from keel.sim.faults import At, Calm, Crash, Cut, Delay, Duplicate, FaultSchedule, Heal, Loss, Partition, Restart, Skew

__all__ = ["KINDS", "SCHEDULES", "ScheduleBuilder", "random_schedule"]

ScheduleBuilder = Callable[[random.Random, Sequence[str], float], FaultSchedule]

KINDS = ("crash", "partition", "cut", "loss", "duplicate", "delay", "skew")
EPISODES_PER_RUN = 8  # mean fault episodes in one schedule: enough to mix kinds, few enough to let the cluster recover
LOSS_RATE = (0.1, 0.5)  # probability range of a loss burst; heavy but not a partition
DUPLICATE_RATE = (0.1, 0.5)  # probability range of a duplication burst
SLOW_DELAY_S = (0.02, 0.2)  # seconds; upper bound of a slow-network episode, up to several heartbeats late
SKEW_OFFSET_S = 0.2  # seconds either way a skewed clock jumps
SKEW_RATE = (0.9, 1.1)  # local seconds per virtual second; ±10 % drift, far beyond real quartz, to stress timeouts
# Network kinds whose episodes must not overlap, because one fault (Heal, Calm) ends the whole family.
_FAMILY = {"partition": "links", "cut": "links", "loss": "quality", "duplicate": "quality", "delay": "quality"}


def random_schedule(rng: random.Random, nodes: Sequence[str], duration: float, *,
                    kinds: Sequence[str] = KINDS, max_down: int | None = None,
                    mean_gap: float | None = None) -> FaultSchedule:
    """A seeded mix of fault episodes over `[0, duration]` seconds, all ended by `duration`.

    Args:
        rng: the only source of randomness.
        nodes: the nodes faults may target (servers; leave clients out).
        duration: virtual seconds the schedule spans.
        kinds: which episode kinds to draw from (see `KINDS`).
        max_down: nodes crashed at once at most; default a minority.
        mean_gap: mean seconds between episode starts; default `duration / EPISODES_PER_RUN`.

    Raises:
        ValueError: an unknown kind or none, no nodes, or a duration that is not positive.
    """
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        raise ValueError(f"random_schedule: unknown kind {unknown[0] if unknown else None!r}; kinds are {list(KINDS)}")
    if not nodes or duration <= 0:
        raise ValueError(f"random_schedule: need nodes and a positive duration, got {len(nodes)} nodes, {duration} s")
    names = tuple(sorted(nodes))
    limit = (len(names) - 1) // 2 if max_down is None else max_down
    gap = mean_gap if mean_gap is not None else duration / EPISODES_PER_RUN
    events: list[At] = []
    busy: dict[str, float] = {}  # episode family or node id -> time its current episode ends
    t = rng.expovariate(1.0 / gap)
    while t < duration:
        kind = rng.choice(tuple(kinds))
        end = min(duration, t + rng.uniform(gap / 2, gap * 2))
        events.extend(_episode(rng, kind, names, t, end, busy, limit))
        t += rng.expovariate(1.0 / gap)
    return FaultSchedule(tuple(events))


def _episode(rng: random.Random, kind: str, nodes: tuple[str, ...], start: float, end: float,
             busy: dict[str, float], max_down: int) -> list[At]:
    family = _FAMILY.get(kind)
    if family is not None:
        if busy.get(family, 0.0) > start or (family == "links" and len(nodes) < 2):
            return []
        busy[family] = end
        return [At(start, _network_fault(rng, kind, nodes)), At(end, Heal() if family == "links" else Calm())]
    free = [n for n in nodes if busy.get(f"{kind}:{n}", 0.0) <= start]
    if kind == "crash":
        down = sum(1 for n in nodes if busy.get(f"crash:{n}", 0.0) > start)
        if down >= max_down or not free:
            return []
        node = rng.choice(free)
        busy[f"crash:{node}"] = end
        return [At(start, Crash(node)), At(end, Restart(node))]
    if not free:
        return []
    node = rng.choice(free)
    busy[f"skew:{node}"] = end
    skewed = Skew(node, offset=rng.uniform(-SKEW_OFFSET_S, SKEW_OFFSET_S), rate=rng.uniform(*SKEW_RATE))
    return [At(start, skewed), At(end, Skew(node))]


def _network_fault(rng: random.Random, kind: str, nodes: tuple[str, ...]) -> Loss | Duplicate | Delay | Partition | Cut:
    if kind == "loss":
        return Loss(rng.uniform(*LOSS_RATE))
    if kind == "duplicate":
        return Duplicate(rng.uniform(*DUPLICATE_RATE))
    if kind == "delay":
        return Delay(0.0, rng.uniform(*SLOW_DELAY_S))
    if kind == "partition":
        shuffled = list(nodes)
        rng.shuffle(shuffled)
        split = rng.randint(1, len(shuffled) - 1)
        return Partition((shuffled[:split], shuffled[split:]))
    src, dst = rng.sample(nodes, 2)
    return Cut(src, dst)


def _calm(rng: random.Random, nodes: Sequence[str], duration: float) -> FaultSchedule:
    """No faults at all."""
    return FaultSchedule()


def _crash_each(rng: random.Random, nodes: Sequence[str], duration: float) -> FaultSchedule:
    """Every node crashes once, one at a time, and restarts before the next goes down."""
    names = sorted(nodes)
    slot = duration / len(names)
    events = []
    for i, node in enumerate(names):
        events += [At(i * slot + slot / 4, Crash(node)), At(i * slot + slot * 3 / 4, Restart(node))]
    return FaultSchedule(tuple(events))


def _split(rng: random.Random, nodes: Sequence[str], duration: float) -> FaultSchedule:
    """A random minority is cut off from the majority for the middle half of the run."""
    shuffled = sorted(nodes)
    rng.shuffle(shuffled)
    minority = max(1, (len(shuffled) - 1) // 2)
    groups = (shuffled[:minority], shuffled[minority:])
    return FaultSchedule((At(duration / 4, Partition(groups)), At(duration * 3 / 4, Heal())))


def _deaf_mute(rng: random.Random, nodes: Sequence[str], duration: float) -> FaultSchedule:
    """One node hears everyone but nobody hears it, for the middle half of the run."""
    names = sorted(nodes)
    mute = rng.choice(names)
    cuts = tuple(At(duration / 4, Cut(mute, other)) for other in names if other != mute)
    return FaultSchedule(cuts + (At(duration * 3 / 4, Heal()),))


def _lossy(rng: random.Random, nodes: Sequence[str], duration: float) -> FaultSchedule:
    """A third of all messages are lost, and a tenth duplicated, until the end."""
    return FaultSchedule((At(0.0, Loss(1 / 3)), At(0.0, Duplicate(0.1)), At(duration, Calm())))


def _drifting(rng: random.Random, nodes: Sequence[str], duration: float) -> FaultSchedule:
    """Every node's clock drifts at its own rate from the start, back to true at the end."""
    names = sorted(nodes)
    starts = tuple(At(0.0, Skew(n, offset=0.0, rate=rng.uniform(*SKEW_RATE))) for n in names)
    return FaultSchedule(starts + tuple(At(duration, Skew(n)) for n in names))


SCHEDULES: Mapping[str, ScheduleBuilder] = {
    "calm": _calm,
    "crash-each": _crash_each,
    "deaf-mute": _deaf_mute,
    "drifting": _drifting,
    "lossy": _lossy,
    "random": random_schedule,
    "split": _split,
}
"""Named schedule builders, so a test or a conformance run can say which it uses."""

"""keel.sim: a deterministic discrete-event simulator for sans-I/O nodes.

One seeded `random.Random` and a virtual clock drive nodes (`Node`: `tick`,
`receive`, `poll`) over a virtual network that loses, duplicates, delays and
reorders messages, under a fault schedule (`At(time, fault)`) of crashes,
restarts, partitions, one-way cuts and clock skew. Each node has a simulated
disk: what it persists becomes durable after an fsync delay, its sends wait
for that, and a crash keeps only what was durable. The same seed gives the
same trace and `trace_hash()`; a broken invariant names its seed and time.

    sim = Simulation(seed, dict.fromkeys(("n1", "n2", "n3"), make_node),
                     faults=random_schedule(random.Random(seed), ("n1", "n2", "n3"), 10.0))
    sim.check(one_leader_per_term)
    sim.run(until=12.0)
"""

from __future__ import annotations

from keel.sim.config import SimConfig
from keel.sim.demo import DemoRun, run_demo
from keel.sim.disk import Disk
from keel.sim.faults import (
    At,
    Calm,
    Crash,
    Cut,
    Delay,
    Duplicate,
    Fault,
    FaultSchedule,
    Heal,
    Loss,
    Partition,
    Restart,
    Skew,
)
from keel.sim.loop import InvariantViolation, Simulation
from keel.sim.node import Node, NodeFactory, Output, Polled
from keel.sim.schedules import KINDS, SCHEDULES, ScheduleBuilder, random_schedule
from keel.sim.trace import Kind, Record, Trace

__all__ = [
    "KINDS",
    "SCHEDULES",
    "At",
    "Calm",
    "Crash",
    "Cut",
    "Delay",
    "DemoRun",
    "Disk",
    "Duplicate",
    "Fault",
    "FaultSchedule",
    "Heal",
    "InvariantViolation",
    "Kind",
    "Loss",
    "Node",
    "NodeFactory",
    "Output",
    "Partition",
    "Polled",
    "Record",
    "Restart",
    "ScheduleBuilder",
    "SimConfig",
    "Simulation",
    "Skew",
    "Trace",
    "random_schedule",
    "run_demo",
]

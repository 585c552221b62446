"""The conformance suite of the consistent core: one seeded scenario per seed, every check.

A scenario runs the real core service (`keel.core.CoreServer`: the
keyspace, leases, sessions, locks) on 3 or 5 servers running the consensus
engine under test, in the simulator, under a seeded fault schedule that
always holds crashes and restarts, a partition and message loss, besides
one-way cuts, duplication, delay and clock skew. Engines batch and
pipeline with settings drawn per seed, down to one entry per message. On
top of it, the current leader is crashed twice (random crashes seldom hit
it) and cut off from the other servers twice, about as long as a new
leader takes to emerge (so two leaders overlap when it returns); every few
seeds every server crashes at once, and on odd seeds an operator changes
the membership: a spare server joins as a learner, catches
up (from a snapshot: servers compact their logs every `snapshot_every`
entries) and is promoted, then a founding member is removed and later added
back. Then the faults heal and the run goes on calm.

Its clients (`keel.conformance.actors`): four register clients doing reads,
writes, cas and deletes on three keys (retrying a timed-out write at
another server with the same session seq), a watcher of those keys, a
lease holder that falls silent once the faults are over, two lockers
taking turns on one lock, and a pipelined client (`pipelined`): many puts
in flight on one session, more than its window. Servers start their
clocks at random offsets and take messages in bursts before polling, as
real nodes do.

The checks (`keel.conformance.core_checks`): one leader per term;
state-machine safety (the same command, answer and state at every index);
linearizability of the register history; sessions (a retried request is
applied once; a live session's request is never refused as expired; every
acknowledged pipelined put is there, applied once); watches (every event once, in revision order, across leader
changes); leases (none expires before its TTL, none outlives it by more
than `LEASE_SLACK_S` once calm); locks (fencing tokens grow with every new
holder); liveness after healing; convergence of the final members.

`run_seed(plugin, seed)` never raises for a violation: it returns a
`SeedResult` naming the first rule broken; `check_consensus(plugin, seed)`
raises AssertionError instead, for pytest.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from typing import Any

import attrs

from keel.conformance.actors import LeaseHolder, Locker, Operator, RegisterClient, Watcher
from keel.conformance.core_checks import Observer
from keel.conformance.pipelined import PipelinedClient
from keel.conformance.runner import SeedResult
from keel.conformance.sim_core import SimCoreServer, StateCheckedMachine
from keel.consensus import EngineSettings
from keel.contract import ConsensusPlugin
from keel.sim import At, Crash, FaultSchedule, Heal, Loss, Partition, Restart, SimConfig, Simulation, random_schedule

__all__ = ["SCENARIO", "Scenario", "check_consensus", "run_seed"]


@attrs.frozen(kw_only=True)
class Scenario:
    """The shape of one run; every duration in virtual seconds."""

    clients: int = 4
    keys: tuple[str, ...] = ("k0", "k1", "k2")
    faults_for: float = 6.0  # faults happen in [0, faults_for)
    heal_for: float = 4.0  # then the cluster runs calm this long
    client_timeout: float = 1.0  # an operation unanswered this long is indeterminate
    think: tuple[float, float] = (0.0, 0.05)  # pause between one client's operations
    snapshot_every: int = 40  # applied entries between snapshots, so compaction and catch-up happen
    loss: float = 0.02  # background message loss outside fault episodes
    whole_crash_every: int = 4  # one seed in N also crashes every server at once
    leader_crashes: int = 2  # times the current leader is crashed on purpose
    leader_down: tuple[float, float] = (0.05, 0.6)  # how long a crashed leader stays down
    # Times the current leader is cut off from every other server, for about as long as a new leader
    # takes to emerge: the old one returns still believing it leads, with proposals in flight, so two
    # leaders overlap (the window where an acceptor that forgets its promise, or a commit rule that
    # counts the wrong replicas, loses a chosen value).
    leader_isolations: int = 2
    isolated_for: tuple[float, float] = (0.15, 0.45)
    change_step: float = 0.3  # seconds between the operator's requests
    lease_ttl: float = 1.0  # the lease holder's and lockers' TTL
    lock_hold: tuple[float, float] = (0.05, 0.3)  # how long a locker keeps the lock
    # Engine batching drawn per seed: one entry per message makes followers
    # acknowledge a new leader's log piece by piece, where commit rules bite;
    # the default batches as a loaded node would.
    batch_entries: tuple[int, ...] = (1, 3, 512)
    inflight: tuple[int, ...] = (1, 2, 8)
    # One client with many puts in flight on one session (`pipelined`): more slots than the window, so
    # a request held back by a lost answer is passed by a window of later ones. The core keeps the
    # answers of `session_window` requests per client; `client_window` (None: the same) lets a test
    # plant a client that ignores it.
    pipelined_slots: int = 12
    pipelined_think: tuple[float, float] = (0.02, 0.12)
    session_window: int = 8
    client_window: int | None = None
    # Seconds between a message's arrival at a node and the poll that reports it (SimConfig.poll_lag):
    # a node takes requests while what an earlier message did is still unreported, as a real one does.
    poll_lag: tuple[float, float] = (0.0, 0.004)


SCENARIO = Scenario()
SETTLE_S = 0.5  # virtual seconds between the clients' last answers and the end of the run
SCHEDULE_DRAWS = 1000  # schedules drawn at most until one holds every required kind; a few suffice


def run_seed(plugin: ConsensusPlugin, seed: int, scenario: Scenario = SCENARIO, *,
             machine: Callable[..., StateCheckedMachine] = StateCheckedMachine) -> SeedResult:
    """Run one seed of the scenario against `plugin` and check everything.

    `machine` makes each server's state machine (called with
    `session_window=`): a test plants a broken one there.
    """
    rng = random.Random(seed)
    voters = tuple(f"n{i}" for i in range(1, (5 if seed % 3 == 2 else 3) + 1))
    spare = f"n{len(voters) + 1}" if seed % 2 == 1 else None
    servers = voters + ((spare,) if spare else ())
    schedule = _schedule(rng, servers, scenario)
    end = scenario.faults_for + scenario.heal_for
    batching = {"max_batch_entries": rng.choice(scenario.batch_entries), "max_inflight": rng.choice(scenario.inflight)}
    nodes: dict[str, Any] = {
        server: functools.partial(SimCoreServer, create=plugin.create, snapshot_every=scenario.snapshot_every,
                                  settings=EngineSettings(node_id=server, voters=voters, **batching),
                                  machine=functools.partial(machine, session_window=scenario.session_window))
        for server in servers
    }
    # The last operations end, retries included, a little before the checks, so that every member
    # has heard of every commit by then (a Paxos follower learns a chosen slot with the next message).
    stop = end - scenario.client_timeout - SETTLE_S
    for number in range(1, scenario.clients + 1):
        nodes[f"c{number}"] = _actor(RegisterClient, number=number, servers=servers, keys=scenario.keys,
                                     timeout=scenario.client_timeout, think=scenario.think, stop_at=stop)
    nodes["p1"] = _actor(PipelinedClient, servers=servers, slots=scenario.pipelined_slots,
                         window=scenario.client_window or scenario.session_window, timeout=scenario.client_timeout,
                         think=scenario.pipelined_think, stop_at=scenario.faults_for)  # its backlog clears when calm
    nodes["w1"] = _actor(Watcher, servers=servers, prefix=b"k", stop_at=stop)
    quiet_at = rng.uniform(scenario.faults_for + 0.5, end - scenario.lease_ttl - 2.0)
    nodes["l1"] = _actor(LeaseHolder, servers=servers, ttl=scenario.lease_ttl, stop_at=quiet_at)
    for name in ("k1", "k2"):
        # They stop early enough that their leases have expired, and the cluster is quiet, by the end.
        nodes[name] = _actor(Locker, servers=servers, name=b"turns", ttl=scenario.lease_ttl,
                             hold=scenario.lock_hold, stop_at=end - scenario.lease_ttl - 1.5)
    if spare is not None:
        victim = rng.choice(voters)
        goals = (("voter", spare), ("out", victim), ("voter", victim))
        nodes["admin"] = _actor(Operator, servers=servers, voters=voters, goals=goals, step_s=scenario.change_step,
                                start_at=0.5, stop_at=scenario.faults_for)
    sim = Simulation(seed, nodes, config=SimConfig(loss=scenario.loss, poll_lag=scenario.poll_lag), faults=schedule)
    observer = Observer(healed_at=scenario.faults_for, calm_from=scenario.faults_for + 0.5)
    sim.observe(observer)
    for _ in range(scenario.leader_crashes):
        sim.at(rng.uniform(0.5, scenario.faults_for - scenario.leader_down[1] - 0.1),
               functools.partial(_crash_leader, observer, rng, scenario.leader_down))
    for _ in range(scenario.leader_isolations):
        sim.at(rng.uniform(0.5, scenario.faults_for - scenario.isolated_for[1] - 0.1),
               functools.partial(_isolate_leader, observer, servers, rng, scenario.isolated_for))
    try:
        sim.run(end)
    except AssertionError as exc:  # an invariant the driver checks (an index applied twice…)
        return observer.result(seed, f"{type(exc).__name__}: {exc}")
    return observer.result(seed, observer.verdict(sim, servers, end))


def check_consensus(plugin: ConsensusPlugin, seed: int, scenario: Scenario = SCENARIO) -> SeedResult:
    """`run_seed`, raising AssertionError naming the violation (for pytest and plugin authors' suites)."""
    result = run_seed(plugin, seed, scenario)
    if result.violation is not None:
        raise AssertionError(f"consensus {plugin.name!r}, seed {seed}: {result.violation}")
    return result


def _actor(cls: type, **kwargs: Any) -> Any:
    def build(node_id: str, durable: tuple[Any, ...], rng: random.Random) -> Any:
        return cls(node_id, rng, **kwargs)

    return build


def _schedule(rng: random.Random, servers: tuple[str, ...], scenario: Scenario) -> FaultSchedule:
    """A random schedule that holds a crash, a partition and message loss; one seed in N a crash of all."""
    for _ in range(SCHEDULE_DRAWS):
        schedule = random_schedule(rng, servers, scenario.faults_for)
        kinds = {type(event.fault) for event in schedule.events}
        if {Crash, Partition, Loss} <= kinds:
            break
    else:  # pragma: no cover - the odds of a draw missing a kind are a few in ten
        raise AssertionError(f"no schedule with crash, partition and loss in {SCHEDULE_DRAWS} draws")
    if rng.randrange(scenario.whole_crash_every) == 0:
        at = rng.uniform(scenario.faults_for * 0.3, scenario.faults_for * 0.6)
        back = at + rng.uniform(0.05, 0.5)
        schedule = schedule + FaultSchedule(
            tuple(At(at, Crash(s)) for s in servers)
            + tuple(At(back + 0.01 * i, Restart(s)) for i, s in enumerate(servers))
        )
    return schedule


def _isolate_leader(observer: Observer, servers: tuple[str, ...], rng: random.Random, span: tuple[float, float],
                    sim: Simulation) -> None:
    node = observer.leader()
    if node is not None:
        others = tuple(s for s in servers if s != node)
        sim.schedule([At(sim.now, Partition(((node,), others))), At(sim.now + rng.uniform(*span), Heal())])


def _crash_leader(observer: Observer, rng: random.Random, down: tuple[float, float], sim: Simulation) -> None:
    node = observer.leader()
    if node is not None:
        sim.schedule([At(sim.now, Crash(node)), At(sim.now + rng.uniform(*down), Restart(node))])

"""The consensus half of the conformance suite: one seeded scenario, every check.

A scenario runs a small replicated key-value service (`kv_server`) on 3 or
5 servers running the engine under test, with 4 clients (`kv_client`)
doing reads, writes, cas and deletes on 3 keys, in the simulator, under a
seeded fault schedule that always holds crashes and restarts, a partition
and message loss, besides one-way cuts, duplication, delay and clock skew.
Engines batch
and pipeline with settings drawn per seed, down to one entry per message.
On top of it, the current leader is crashed twice (random crashes seldom
hit it), every few seeds every server crashes at once, and on odd seeds an
operator (`kv_admin`) changes the membership while all this goes on: a
spare server joins as a learner, catches up (from a snapshot, since the
servers compact their logs every `snapshot_every` entries) and is
promoted, then a founding member is removed and later added back. Then the
faults heal and the run goes on calm.

What it checks:
- **one leader per term**: no two servers lead in the same term;
- **state-machine safety**: every server applies the same command, and
  reaches the same state, at each index;
- **linearizability** of the clients' history (`keel.conformance.checkers`),
  with timeouts recorded as indeterminate;
- **durability**: crashes, of a minority or of every server, lose no
  committed entry (a lost entry is re-filled by another command, which the
  state-machine check catches, or shows as a non-linearizable read);
- **liveness**: once the faults have healed, a client write commits within
  `LIVENESS_BOUND_S` of virtual time;
- **convergence**: at the end every member of the final configuration has
  applied the same entries and reached the same state.

`run_seed(plugin, seed)` never raises for a violation: it returns a
`SeedResult` naming the first rule broken, so a run over many seeds can
report them all; `check_consensus(plugin, seed)` raises AssertionError
instead, for pytest.
"""

from __future__ import annotations

import functools
import random
from typing import Any

import attrs

from keel.conformance.checkers import History, check_linearizable
from keel.conformance.kv_admin import ChangeMade, Operator
from keel.conformance.kv_client import KvClient, OpCompleted, OpInvoked
from keel.conformance.kv_server import KvServer
from keel.conformance.runner import SeedResult
from keel.consensus import Applied, EngineSettings, Installed, RoleChanged
from keel.contract import ConsensusPlugin
from keel.sim import At, Crash, FaultSchedule, Loss, Partition, Restart, SimConfig, Simulation, random_schedule

__all__ = ["LIVENESS_BOUND_S", "SCENARIO", "Scenario", "check_consensus", "run_seed"]


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
    whole_crash_every: int = 4  # every Nth seed also crashes every server at once
    leader_crashes: int = 2  # times the current leader is crashed on purpose
    leader_down: tuple[float, float] = (0.05, 0.6)  # how long a crashed leader stays down
    change_step: float = 0.3  # seconds between the operator's requests
    # Engine batching drawn per seed: one entry per message makes followers
    # acknowledge a new leader's log piece by piece, where commit rules bite;
    # the default batches as a loaded node would.
    batch_entries: tuple[int, ...] = (1, 3, 512)
    inflight: tuple[int, ...] = (1, 2, 8)


SCENARIO = Scenario()
LIVENESS_BOUND_S = 3.0  # virtual seconds after healing within which a write must commit; ~10 election timeouts
SCHEDULE_DRAWS = 1000  # schedules drawn at most until one holds every required kind; a few suffice


def run_seed(plugin: ConsensusPlugin, seed: int, scenario: Scenario = SCENARIO) -> SeedResult:
    """Run one seed of the scenario against `plugin` and check everything."""
    rng = random.Random(seed)
    voters = tuple(f"n{i}" for i in range(1, (5 if seed % 3 == 2 else 3) + 1))
    spare = f"n{len(voters) + 1}" if seed % 2 == 1 else None
    servers = voters + ((spare,) if spare else ())
    schedule = _schedule(rng, servers, scenario)
    end = scenario.faults_for + scenario.heal_for
    batching = {"max_batch_entries": rng.choice(scenario.batch_entries), "max_inflight": rng.choice(scenario.inflight)}
    nodes: dict[str, Any] = {
        server: functools.partial(KvServer, create=plugin.create, snapshot_every=scenario.snapshot_every,
                                  settings=EngineSettings(node_id=server, voters=voters, **batching))
        for server in servers
    }
    for number in range(1, scenario.clients + 1):
        nodes[f"c{number}"] = functools.partial(
            _client, number=number, servers=servers, keys=scenario.keys, timeout=scenario.client_timeout,
            think=scenario.think, stop_at=end - scenario.client_timeout,
        )
    if spare is not None:
        victim = rng.choice(voters)
        goals = (("voter", spare), ("out", victim), ("voter", victim))
        nodes["admin"] = functools.partial(_operator, servers=servers, voters=voters, goals=goals,
                                           step=scenario.change_step, start_at=0.5, stop_at=scenario.faults_for)
    sim = Simulation(seed, nodes, config=SimConfig(loss=scenario.loss), faults=schedule)
    observer = _Observer(healed_at=scenario.faults_for)
    sim.observe(observer)
    for _ in range(scenario.leader_crashes):
        sim.at(rng.uniform(0.5, scenario.faults_for - scenario.leader_down[1] - 0.1),
               functools.partial(_crash_leader, observer, rng, scenario.leader_down))
    try:
        sim.run(end)
    except AssertionError as exc:  # an invariant the driver checks (an index applied twice…)
        return observer.result(seed, f"{type(exc).__name__}: {exc}")
    violation = observer.violation or _check_history(observer.history) or _check_liveness(observer, scenario) \
        or _check_converged(sim, servers)
    return observer.result(seed, violation)


def check_consensus(plugin: ConsensusPlugin, seed: int, scenario: Scenario = SCENARIO) -> SeedResult:
    """`run_seed`, raising AssertionError naming the violation (for pytest and plugin authors' suites)."""
    result = run_seed(plugin, seed, scenario)
    if result.violation is not None:
        raise AssertionError(f"consensus {plugin.name!r}, seed {seed}: {result.violation}")
    return result


class _Observer:
    """Reads the node events as they happen: history, applied commands, leaders."""

    def __init__(self, healed_at: float) -> None:
        self.history = History()
        self.handles: dict[tuple[str, int], Any] = {}
        self.applied: dict[int, tuple[str, bytes, bytes]] = {}  # index -> (first node, command, digest)
        self.leaders: dict[int, str] = {}  # term -> leader
        self.violation: str | None = None
        self.healed_at = healed_at
        self.progress_at: float | None = None  # first command applied after healing
        self.installs = 0
        self.changes = 0

    def __call__(self, time: float, node: str, event: Any) -> None:
        if isinstance(event, OpInvoked):
            value = list(event.value) if isinstance(event.value, tuple) else event.value
            self.handles[(event.process, event.seq)] = self.history.invoke(event.process, event.f, event.key, value,
                                                                           time=time)
        elif isinstance(event, OpCompleted):
            handle = self.handles.pop((event.process, event.seq))
            getattr(self.history, event.completion)(handle, event.result, time=time)
        elif isinstance(event, Applied):
            self._applied(time, node, event)
        elif isinstance(event, RoleChanged) and event.role == "leader":
            other = self.leaders.setdefault(event.term, node)
            if other != node:
                self._fail(f"two leaders in term {event.term}: {other} and {node} (t={time:.3f})")
        elif isinstance(event, Installed):
            self.installs += 1
        elif isinstance(event, ChangeMade):
            self.changes += 1

    def leader(self) -> str | None:
        """The leader of the highest term seen (it may have been deposed since)."""
        return self.leaders[max(self.leaders)] if self.leaders else None

    def result(self, seed: int, violation: str | None) -> SeedResult:
        return SeedResult(seed=seed, operations=len(self.history), violation=violation,
                          snapshots_installed=self.installs, membership_changes=self.changes)

    def _applied(self, time: float, node: str, event: Applied) -> None:
        first = self.applied.setdefault(event.index, (node, event.command, event.digest))
        if first[1] != event.command:
            self._fail(f"index {event.index}: {first[0]} applied one command and {node} another (t={time:.3f})")
        elif first[2] != event.digest:
            self._fail(f"index {event.index}: {first[0]} and {node} reached different states (t={time:.3f})")
        if time >= self.healed_at and self.progress_at is None:
            self.progress_at = time

    def _fail(self, message: str) -> None:
        if self.violation is None:
            self.violation = message


def _schedule(rng: random.Random, servers: tuple[str, ...], scenario: Scenario) -> FaultSchedule:
    """A random schedule that holds a crash, a partition and message loss; every Nth seed a crash of all."""
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


def _crash_leader(observer: _Observer, rng: random.Random, down: tuple[float, float], sim: Simulation) -> None:
    node = observer.leader()
    if node is not None:
        sim.schedule([At(sim.now, Crash(node)), At(sim.now + rng.uniform(*down), Restart(node))])


def _check_history(history: History) -> str | None:
    verdict = check_linearizable(history)
    if verdict.linearizable is False:
        return f"not linearizable: {verdict.explain()}"
    if verdict.linearizable is None:
        return f"linearizability unknown: {verdict.explain()}"
    return None


def _check_liveness(observer: _Observer, scenario: Scenario) -> str | None:
    if observer.progress_at is None or observer.progress_at > scenario.faults_for + LIVENESS_BOUND_S:
        return (f"no progress: nothing committed within {LIVENESS_BOUND_S} s after the faults healed "
                f"at t={scenario.faults_for}")
    return None


def _check_converged(sim: Simulation, servers: tuple[str, ...]) -> str | None:
    live = {s: sim.node(s) for s in servers if sim.node(s) is not None}
    leaders = [s for s, n in live.items() if n.node.engine.status().role == "leader"]
    if not leaders:
        return "no leader at the end of the calm period"
    status = live[max(leaders, key=lambda s: live[s].node.engine.status().term)].node.engine.status()
    members = status.voters + status.learners
    states = {s: (live[s].node.machine.index, live[s].node.machine.digest.hex()[:12]) for s in members if s in live}
    if len(set(states.values())) > 1:
        return f"members did not converge by the end: {states}"
    return None


def _client(node_id: str, durable: tuple[Any, ...], rng: random.Random, **kwargs: Any) -> KvClient:
    return KvClient(node_id, rng, **kwargs)


def _operator(node_id: str, durable: tuple[Any, ...], rng: random.Random, **kwargs: Any) -> Operator:
    return Operator(node_id, rng, **kwargs)


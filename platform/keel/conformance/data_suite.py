"""The data half of the conformance suite: one store on the data cluster, over one consensus engine.

A scenario runs, in the simulator, 3 core servers (the real `CoreServer` on
the engine under test, whose leader runs the controller) and 4 data nodes
(the real `DataServer`, following the core as `keel.conformance.sim_data`
does), with a bucket of the store under test (N=3, R=2, W=2, 8 partitions).
Clients put unique values and get keys through random data nodes. Faults
come from a seeded schedule over every node: crashes with restarts,
partitions, loss, duplication, delay and clock skew; in odd seeds the
fourth data node joins late, so partitions move to it while clients write
(rebalancing). Then the faults heal and the cluster runs calm while
anti-entropy works.

The checks, on the clients' history and the nodes' final state:

- **liveness**: once the faults heal, puts and gets succeed again;
- (a) **convergence**: once calm, every writer of every partition in the
  final map holds the same records, byte for byte;
- (b) **quorum reads**: a get that started after a put of that key was
  acknowledged returns a value whose write's record dominates that put's
  record under the store's merge (never an older value);
- (c) **no lost writes**: for every key, the records the final replicas hold,
  merged, dominate every acknowledged put's record;
- (d) **durability** is (c) across the crashes and restarts of the schedule:
  a node restarts from what it made durable, and W=2 acknowledgements
  survive any one crash.

A value identifies the put that wrote it (values are unique), so a read's
value names the record it saw: these checks fit stores whose reads return
a written value (last-writer-wins); CRDT stores add their own.
`run_seed(consensus, store, seed)` returns a `SeedResult` naming the first
rule broken; `check_data` raises it for pytest.
"""

from __future__ import annotations

import functools
import random
from typing import Any

import attrs

from keel import wire
from keel.conformance.runner import SeedResult
from keel.conformance.sim_core import Caller, SimCoreServer, StateCheckedMachine
from keel.conformance.sim_data import DataClient, DataOp, SimDataNode
from keel.consensus import EngineSettings
from keel.contract import ConsensusPlugin, StorePlugin
from keel.core.api import Call, CreateBucket
from keel.core.api.system import MAP_KEY, MEMBER_PREFIX
from keel.data.bucket import BucketSpec
from keel.data.controller import ControllerConfig
from keel.data.partition_map import PartitionMap
from keel.data.server import WriteMade
from keel.data.store import decode_record, encode_record
from keel.sim import At, Crash, FaultSchedule, Restart, SimConfig, Simulation, random_schedule

__all__ = ["DATA_SCENARIO", "DataScenario", "check_data", "run_seed"]

BUCKET = "b"


@attrs.frozen(kw_only=True)
class DataScenario:
    """The shape of one run; durations in virtual seconds."""

    core: tuple[str, ...] = ("n1", "n2", "n3")
    data: tuple[str, ...] = ("d1", "d2", "d3", "d4")
    clients: int = 4
    keys: int = 6
    partitions: int = 8
    faults_for: float = 8.0
    heal_for: float = 8.0
    client_timeout: float = 1.0
    think: tuple[float, float] = (0.0, 0.1)
    loss: float = 0.01


DATA_SCENARIO = DataScenario()


def run_seed(consensus: ConsensusPlugin, store: StorePlugin, seed: int,
             scenario: DataScenario = DATA_SCENARIO) -> SeedResult:
    """Run one seed and check (a)–(d); never raises for a violation."""
    rng = random.Random(seed)
    stores = {store.name: store}
    controller = ControllerConfig(map_key=MAP_KEY, member_prefix=MEMBER_PREFIX, partitions=scenario.partitions,
                                  replicas=3, settle=0.5, max_wait=2.0)
    nodes: dict[str, Any] = {
        server: functools.partial(SimCoreServer, create=consensus.create, snapshot_every=200,
                                  settings=EngineSettings(node_id=server, voters=scenario.core),
                                  machine=StateCheckedMachine, controller=controller)
        for server in scenario.core
    }
    for node in scenario.data:
        nodes[node] = functools.partial(SimDataNode, core=scenario.core, stores=stores)
    options = store.options() if store.options is not None else None
    spec = BucketSpec(BUCKET, store.name, _plain_options(options), n=3, r=2, w=2)
    nodes["admin"] = _actor(_Admin, core=scenario.core, bucket=spec)
    keys = tuple(f"k{i}".encode() for i in range(scenario.keys))
    stop = scenario.faults_for + scenario.heal_for * 0.6  # then anti-entropy has the rest of the calm to itself
    for number in range(1, scenario.clients + 1):
        nodes[f"c{number}"] = _actor(DataClient, data_nodes=scenario.data, keys=keys, bucket=BUCKET,
                                     timeout=scenario.client_timeout, think=scenario.think, start_at=1.0,
                                     stop_at=stop)
    schedule = random_schedule(rng, scenario.core + scenario.data, scenario.faults_for)
    if seed % 2 == 1:  # the last data node joins late: partitions move to it under load
        late = scenario.data[-1]
        schedule = FaultSchedule((At(0.0, Crash(late)), At(rng.uniform(2.0, 4.0), Restart(late)))) + schedule
    sim = Simulation(seed, nodes, config=SimConfig(loss=scenario.loss), faults=schedule)
    history: list[DataOp] = []
    made: dict[tuple[bytes, bytes], bytes] = {}  # (key, value) -> the record its write made

    def observe(time: float, node: str, event: Any) -> None:
        if isinstance(event, DataOp):
            history.append(event)
        elif isinstance(event, WriteMade) and event.bucket == BUCKET:
            (value,) = wire.decode_plain(event.args, "args")
            made[(event.key, value)] = event.record

    sim.observe(observe)
    end = scenario.faults_for + scenario.heal_for
    try:
        sim.run(end)
    except AssertionError as exc:
        return SeedResult(seed=seed, operations=len(history), violation=f"{type(exc).__name__}: {exc}")
    instance = store.create(options)
    violation = (_check_live(history, scenario) or _check_reads(history, made, instance)
                 or _check_final(sim, scenario, history, made, instance))
    return SeedResult(seed=seed, operations=sum(1 for e in history if e.phase == "ok"), violation=violation)


def check_data(consensus: ConsensusPlugin, store: StorePlugin, seed: int,
               scenario: DataScenario = DATA_SCENARIO) -> SeedResult:
    """`run_seed`, raising AssertionError naming the violation."""
    result = run_seed(consensus, store, seed, scenario)
    if result.violation is not None:
        raise AssertionError(f"store {store.name!r} on consensus {consensus.name!r}, seed {seed}: {result.violation}")
    return result


# --- the checks --------------------------------------------------------------------------------


def _dominates(store: Any, a: bytes, b: bytes) -> bool:
    """Whether record `a` already holds everything record `b` says (merging `b` in changes nothing)."""
    return encode_record(store.merge(decode_record(a, "a"), decode_record(b, "b"))) == a


def _check_live(history: list[DataOp], scenario: DataScenario) -> str | None:
    """Liveness: once the faults are over, writes and reads succeed again."""
    calm = scenario.faults_for + scenario.heal_for * 0.3  # the map has settled by then
    done = {e.op for e in history if e.phase == "ok" and e.time >= calm}
    if done != {"put", "get"}:
        return f"(liveness) after healing, no {' or '.join(sorted({'put', 'get'} - done))} succeeded"
    return None


def _check_reads(history: list[DataOp], made: dict[tuple[bytes, bytes], bytes], store: Any) -> str | None:
    """(b): a get that started after an acknowledged put saw that put or something that dominates it."""
    invoked = {(e.client, e.rid): e for e in history if e.phase == "invoke"}
    acked = [(e.time, e) for e in history if e.phase == "ok" and e.op == "put"]
    for done in history:
        if done.phase != "ok" or done.op != "get":
            continue
        started = invoked[(done.client, done.rid)].time
        for at, put in acked:
            if put.key != done.key or at >= started:
                continue
            seen = made.get((done.key, done.value)) if done.value is not None else None
            wrote = made.get((put.key, put.value))
            if wrote is None:
                continue  # pragma: no cover - every acknowledged put was coordinated by some node
            if seen is None or not _dominates(store, seen, wrote):
                return (f"(b) get {done.key!r} by {done.client} at {started:.3f} returned {done.value!r}, older than "
                        f"{put.value!r}, acknowledged at {at:.3f}")
    return None


def _check_final(sim: Simulation, scenario: DataScenario, history: list[DataOp],
                 made: dict[tuple[bytes, bytes], bytes], store: Any) -> str | None:
    """(a) every writer of a partition holds the same records; (c) they dominate every acknowledged put."""
    data = {node: sim.node(node) for node in scenario.data if sim.node(node) is not None}
    maps = [n.server.map for n in data.values() if n.server.map is not None]
    if not maps:
        return "no data node holds a partition map at the end"
    final: PartitionMap = max(maps, key=lambda m: m.epoch)
    merged: dict[bytes, bytes] = {}
    for partition in range(final.partitions):
        holders = [node for node in final.replicas_for(partition) if node in data]
        held = [{k: v for (b, p, k), v in data[node].records.held.items() if b == BUCKET and p == partition}
                for node in holders]
        for node, records in zip(holders, held):
            if records != held[0]:
                differ = sorted(set(records.items()) ^ set(held[0].items()))[:1]
                return (f"(a) partition {partition}: {node} and {holders[0]} hold different records after healing, "
                        f"e.g. key {differ[0][0]!r}")
        for records in held:
            for key, record in records.items():
                merged[key] = record if key not in merged else encode_record(
                    store.merge(decode_record(merged[key], "m"), decode_record(record, "r")))
    for e in history:
        if e.phase == "ok" and e.op == "put":
            wrote = made.get((e.key, e.value))
            if wrote is not None and (e.key not in merged or not _dominates(store, merged[e.key], wrote)):
                return f"(c) the acknowledged put {e.key!r} = {e.value!r} by {e.client} is gone from every replica"
    return None


# --- actors ----------------------------------------------------------------------------------


class _Admin:
    """Creates the bucket, retrying until the core answers."""

    def __init__(self, node_id: str, rng: random.Random, *, core: tuple[str, ...], bucket: BucketSpec) -> None:
        self.caller = Caller(node_id, rng, core)
        self.bucket = bucket
        self.done = False
        self.rng = rng
        self.session = f"{node_id}-{rng.getrandbits(32):08x}"
        self.seq = 0

    def tick(self, now: float) -> None:
        self.caller.tick(now)
        if not self.done and self.caller.idle:
            self.seq += 1
            self.caller.call(Call(self.session, self.seq, self.seq - 1, CreateBucket(self.bucket.to_bytes())),
                             timeout=1.0, on_done=self._created)

    def _created(self, reply: Any, maybe: bool) -> None:
        self.done = reply is not None and not hasattr(reply, "kind")
        if getattr(reply, "kind", None) == "session_expired":  # none of its requests applied: start afresh
            self.session, self.seq = f"{self.session.split('-')[0]}-{self.rng.getrandbits(32):08x}", 0

    def receive(self, src: str, message: Any) -> None:
        self.caller.receive(src, message)

    def poll(self) -> Any:
        from keel.sim import Output  # noqa: PLC0415

        return Output(send=self.caller.take_sends())


def _actor(cls: type, **kwargs: Any) -> Any:
    def build(node_id: str, durable: tuple[Any, ...], rng: random.Random) -> Any:
        return cls(node_id, rng, **kwargs)

    return build


def _plain_options(options: Any) -> dict[str, Any]:
    return {} if options is None else {k: v for k, v in attrs.asdict(options).items()}

"""The simulated disk: fsync delay, sends held until durable, crash and restart."""

from __future__ import annotations

from keel.sim import At, Crash, Kind, Restart, SimConfig, Simulation
from keel.sim.disk import Disk
from keel.sim.payload import Payload

from .gossip import cluster

NODES = ("a", "b", "c")
SLOW_FSYNC = SimConfig(fsync=(0.05, 0.05))  # five ticks per fsync, so records are always in flight


def sealed(*values: object) -> tuple[Payload, ...]:
    return tuple(Payload.of(v, wire_only=False) for v in values)


def test_disk_keeps_only_the_synced_prefix_on_crash():
    disk = Disk()
    first = disk.write(sealed(("x", 1), ("x", 2)))
    disk.write(sealed(("x", 3)))
    disk.synced(first)
    assert (disk.durable, disk.pending) == (2, 1)
    assert disk.crash(now=1.0) == 1
    assert disk.records() == disk.durable_records() == (("x", 1), ("x", 2))


def test_sends_leave_only_after_what_was_persisted_before_them_is_durable(seed):
    sim = Simulation(seed, cluster(NODES), config=SLOW_FSYNC)
    cursor = [0]

    def sent_only_what_is_durable(s: Simulation) -> None:
        for record in s.trace.since(cursor[0]):
            if record.kind is Kind.SEND:
                durable = s.disk(record.node).durable_records()
                assert ("sent", record.data.seq) in durable, f"{record.node} sent {record.data.seq} before its fsync"
        cursor[0] = len(s.trace)

    sim.check(sent_only_what_is_durable)
    sim.run(1.0)
    sync_times = {(r.node, r.time) for r in sim.trace.of(Kind.SYNC)}
    sends = sim.trace.of(Kind.SEND)
    assert sends and all((r.node, r.time) in sync_times for r in sends)


def test_sends_go_at_once_when_nothing_is_waiting_for_fsync(seed):
    sim = Simulation(seed, cluster(NODES, persist=False), config=SLOW_FSYNC)
    sim.run(0.5)
    ticks = {(r.node, r.time) for r in sim.trace.of(Kind.TICK)}
    assert all((r.node, r.time) in ticks for r in sim.trace.of(Kind.SEND))
    assert not sim.trace.of(Kind.SYNC)


def test_crash_loses_unsynced_records_and_restart_rebuilds_from_synced_ones(seed):
    sim = Simulation(seed, cluster(NODES), config=SLOW_FSYNC, faults=[At(0.503, Crash("a")), At(0.8, Restart("a"))])
    sim.run(0.7)
    (crash,) = sim.trace.of(Kind.CRASH)
    assert crash.data > 0, "a slow fsync leaves records unsynced at any moment"
    assert sim.node("a") is None
    survivors = sim.disk("a").records()
    assert survivors == sim.disk("a").durable_records()
    assert ("sent", 1) in survivors
    sim.run(1.0)
    assert sim.node("a").recovered == survivors
    assert sim.trace.of(Kind.START)[-1].data == (2, len(survivors))


def test_crash_drops_held_sends_and_stops_timers_until_restart(seed):
    sim = Simulation(seed, cluster(NODES), config=SLOW_FSYNC, faults=[At(0.503, Crash("a")), At(0.8, Restart("a"))])
    sim.run(1.0)
    quiet = [r for r in sim.trace if r.node == "a" and 0.503 < r.time < 0.8 and r.kind in (Kind.TICK, Kind.SYNC)]
    assert quiet == []
    assert any(r.detail == "crash" for r in sim.trace.of(Kind.DROP))
    down = [r for r in sim.trace.of(Kind.DROP) if r.peer == "a" and r.detail == "down"]
    assert down and all(0.503 <= r.time < 0.8 for r in down)


def test_restarted_node_never_reuses_a_number_a_peer_saw(seed):
    faults = [At(t, Crash("a")) for t in (0.31, 0.92, 1.47)] + [At(t, Restart("a")) for t in (0.5, 1.1, 1.6)]
    sim = Simulation(seed, cluster(NODES), config=SLOW_FSYNC, faults=faults)
    sim.run(2.0)
    sent = [(r.peer, r.data.seq) for r in sim.trace.of(Kind.SEND) if r.node == "a"]
    assert len(sent) == len(set(sent))
    assert [r.data[0] for r in sim.trace.of(Kind.START) if r.node == "a"] == [1, 2, 3, 4]


def test_crashing_a_down_node_or_restarting_a_live_one_changes_nothing(seed):
    faults = [At(0.2, Restart("a")), At(0.3, Crash("b")), At(0.4, Crash("b"))]
    sim = Simulation(seed, cluster(NODES), faults=faults)
    sim.run(0.5)
    notes = [(r.time, r.node, r.detail) for r in sim.trace.of(Kind.FAULT)]
    assert notes == [(0.2, "a", "noop"), (0.3, "b", ""), (0.4, "b", "noop")]
    assert len(sim.trace.of(Kind.CRASH)) == 1


def test_each_incarnation_gets_its_own_seeded_rng(seed):
    faults = [At(0.2, Crash("a")), At(0.3, Restart("a"))]
    first = Simulation(seed, cluster(NODES), faults=faults)
    draw_before = first.node("a").rng.random()
    first.run(0.5)
    draw_after = first.node("a").rng.random()
    again = Simulation(seed, cluster(NODES), faults=faults)
    assert again.node("a").rng.random() == draw_before != draw_after

"""CoreServer, sans-I/O, on a single voter driven by hand: what it stamps, promises and refuses."""

from __future__ import annotations

import random
from typing import Any

from keel import plugins, wire
from keel.consensus import EngineSettings
from keel.contract import Kind
from keel.core import Command, CoreServer
from keel.core.api import (
    Call, ChangeMembership, LeaseGrant, LeaseGrantReply, LeaseKeepAlive, LeaseRevoke, Lock, Put, Range, Watch,
)
from keel.core.api.system import MAP_KEY, DataReady, DataReadyReply, RegisterMember
from keel.data.partition_map import PartitionMap
from keel.data.placement import place
from keel.transport import ErrorReply

CLOCK_START_S = 184_438.0  # where a node's clock may start (Trio's carries a random offset)
TICK_S = 0.01


class One:
    """A single-voter server driven synchronously; its messages to itself are fed back at once."""

    def __init__(self, now: float = CLOCK_START_S) -> None:
        raft = plugins.load().get(Kind.CONSENSUS, "raft", field="consensus")
        self.server = CoreServer("n1", create=raft.create, settings=EngineSettings(node_id="n1", voters=("n1",)),
                                 rng=random.Random(0))
        self.now = now
        self.replies: dict[Any, list[Any]] = {}
        for _ in range(200):  # a single voter elects itself after one election timeout
            self.step(0.05)
            if self.server.leading:
                return
        raise AssertionError("a single voter did not elect itself")

    def pump(self) -> None:
        while True:
            out = self.server.poll()
            for ref, reply in out.replies:
                self.replies.setdefault(ref, []).append(reply)
            messages = [*out.send_early, *out.send]
            if not (messages or out.persist or out.replies or out.events):
                return
            for _, message in messages:
                self.server.receive("n1", message)

    def step(self, seconds: float = TICK_S) -> None:
        self.now += seconds
        self.server.tick(self.now)
        self.pump()

    def ask(self, ref: Any, call: Any) -> Any:
        self.server.request(ref, call)
        self.pump()
        for _ in range(20):
            if ref in self.replies:
                return self.replies[ref][0]
            self.step()
        raise AssertionError(f"{call} got no answer")


def stamps(server: CoreServer) -> list[float]:
    log = server.node.engine.log
    commands = [wire.decode(entry.data) for entry in log.between(log.snapshot.index + 1, log.last_index) if entry.data]
    return [command.at for command in commands if isinstance(command, Command)]


def test_log_time_goes_on_from_the_log_not_from_the_leaders_own_clock():
    """Sessions expire by log time; a new leader's clock, far from the last one's, must not move it."""
    one = One()
    took_office = one.server.now
    one.server.tick(took_office + 2.0)
    one.server.request("r", Call("c", 1, 0, Put(b"k", b"v")))
    (at,) = stamps(one.server)
    assert at == one.server.now - took_office == 2.0


def test_a_request_taken_after_an_election_no_poll_has_reported_yet_is_stamped_with_log_time():
    """Issue 16: a runtime polls once per burst of inputs, so a request may reach an engine that has
    just been elected before the server heard of it; it once got the node's own clock, which starts
    anywhere (Trio's at 10^4 to 2*10^5 s), and every session expired when it applied."""
    raft = plugins.load().get(Kind.CONSENSUS, "raft", field="consensus")
    server = CoreServer("n1", create=raft.create, settings=EngineSettings(node_id="n1", voters=("n1",)),
                        rng=random.Random(0))
    now = CLOCK_START_S
    while server.node.engine.status().role != "leader":  # ticks alone elect a lone voter; nothing polls
        now += TICK_S
        server.tick(now)
    assert not server.leading
    server.request("r", Call("c", 1, 0, Put(b"k", b"v")))
    (at,) = stamps(server)
    assert at == 0.0  # the log's time, which starts at 0, not CLOCK_START_S


def test_a_retry_of_a_request_still_being_proposed_waits_on_that_entry_instead_of_adding_a_copy():
    """Under load, a retry reaching the leader that still holds the first copy uncommitted must not
    log another one: copies crowd out new work, so more requests time out and retry (issue 16)."""
    one = One()
    one.server.request("first", Call("c", 1, 0, Put(b"k", b"v")))
    one.server.request("retry", Call("c", 1, 0, Put(b"k", b"v")))
    one.pump()
    assert len(stamps(one.server)) == 1
    assert one.replies["first"] == one.replies["retry"]
    assert one.replies["first"][0].revision == 1  # the first put into an empty keyspace, once


def test_a_keep_alive_that_arrives_after_the_expiry_was_proposed_is_told_the_lease_is_gone():
    """Saying "alive" then would promise a TTL that the expiry about to apply takes away."""
    one = One()
    grant = one.ask("g", Call("c", 1, 0, LeaseGrant(1.0)))
    one.now += 1.01
    one.server.tick(one.now)  # past its deadline: the expiry is proposed
    reply = one.ask("k", Call("c", 0, 1, LeaseKeepAlive(grant.id)))
    assert isinstance(reply, ErrorReply) and reply.kind == "lease_expired"


def test_a_retried_lock_whose_lease_ran_out_is_not_told_it_holds_the_lock():
    """The session table replays the first answer; a lock answer must be true now, not then."""
    one = One()
    lease_a = one.ask("ga", Call("a", 1, 0, LeaseGrant(1.0))).id
    lock_a = Call("a", 2, 1, Lock(b"L", lease_a, wait=0.0))
    assert one.ask("la", lock_a).acquired  # and this answer is lost on its way
    for _ in range(150):  # a cannot reach the leader; its lease runs out
        one.step()
    lease_b = one.ask("gb", Call("b", 1, 0, LeaseGrant(10.0))).id
    assert one.ask("lb", Call("b", 2, 1, Lock(b"L", lease_b, wait=0.0))).acquired
    again = one.ask("la2", lock_a)  # a's client retries its lost request, same seq
    assert isinstance(again, ErrorReply) and again.kind == "lease_expired"


def test_a_late_expiry_does_not_end_a_lease_granted_again_with_the_same_id():
    one = One()
    one.ask("g", Call("c", 1, 0, LeaseGrant(1.0, id=5)))
    one.now += 0.99
    one.server.tick(one.now)
    one.server.request("revoke", Call("c", 2, 1, LeaseRevoke(5)))
    one.server.request("again", Call("c", 3, 1, LeaseGrant(10.0, id=5)))
    one.now += 0.02
    one.server.tick(one.now)  # the old lease's deadline passed: its expiry is proposed after the regrant
    for _ in range(5):
        one.step()
    assert isinstance(one.replies["again"][0], LeaseGrantReply)
    assert 5 in one.server.machine.leases


def test_a_request_too_large_for_the_engine_is_a_one_line_error_naming_both_sizes():
    one = One()
    reply = one.ask("r", Call("c", 1, 0, Put(b"k", b"x" * (2 << 20))))
    assert isinstance(reply, ErrorReply) and reply.kind == "error"
    assert "bytes exceeds the limit of 1048576 bytes" in reply.message and "\n" not in reply.message


def test_a_membership_change_naming_no_valid_node_is_refused():
    one = One()
    reply = one.ask("m", Call("op", 0, 0, ChangeMembership("add_learner", "")))
    assert isinstance(reply, ErrorReply) and "is not a node id" in reply.message
    assert one.server.node.engine.status().learners == ()


def test_a_watch_reply_fits_in_a_frame_and_the_next_poll_goes_on_where_it_stopped():
    """However much history there is, one answer stays below max_frame; polling again sees the rest, once."""
    one = One()
    for seq in range(1, 101):  # 10 MB of history
        one.ask(seq, Call("c", seq, seq - 1, Put(b"cfg/%d" % seq, b"x" * 100_000)))
    seen: list[int] = []
    start = 1
    while len(seen) < 100:
        reply = one.ask(f"w{start}", Call("w", 0, 0, Watch(b"cfg/", prefix=True, start_revision=start, wait=0)))
        assert len(wire.encode_frame(reply)) < wire.MAX_FRAME // 2
        seen += [event.kv.mod_revision for event in reply.events]
        start = reply.next_revision
    assert seen == list(range(1, 101))


def test_a_range_reply_fits_in_a_frame_and_says_there_is_more():
    one = One()
    for seq in range(1, 101):
        one.ask(seq, Call("c", seq, seq - 1, Put(b"cfg/%03d" % seq, b"x" * 100_000)))
    reply = one.ask("r", Call("r", 0, 0, Range(b"cfg/", prefix=True)))
    assert reply.more and reply.count == 100 and 0 < len(reply.kvs) < 100
    assert len(wire.encode_frame(reply)) < wire.MAX_FRAME // 2


def test_the_leader_places_registered_data_nodes_once_membership_settles_and_counts_ready_reports():
    one = One()
    for seq, node in enumerate(("d1", "d2", "d3"), start=1):
        lease = one.ask(f"g{node}", Call("d", seq * 2 - 1, 0, LeaseGrant(30.0))).id
        one.ask(f"r{node}", Call("d", seq * 2, 0, RegisterMember(node, b"info", lease)))

    def committed() -> PartitionMap | None:
        reply = one.ask(object(), Call("q", 0, 0, Range(MAP_KEY)))
        return PartitionMap.from_bytes(reply.kvs[0].value) if reply.kvs else None

    assert committed() is None  # membership is still settling
    for _ in range(300):  # the controller's settle time (2 s) of ticks
        one.step()
    first = committed()
    assert first is not None and first.nodes == ("d1", "d2", "d3") and first.epoch == 1
    # A fourth node joins: the next map moves partitions to it in two steps.
    lease = one.ask("g4", Call("d", 7, 0, LeaseGrant(30.0))).id
    one.ask("r4", Call("d", 8, 0, RegisterMember("d4", b"info", lease)))
    for _ in range(300):
        one.step()
    moving = committed()
    assert moving.epoch == 2 and moving.placements == place(first, ["d1", "d2", "d3", "d4"]).placements
    joined = [p for p, placement in enumerate(moving.placements) if "d4" in placement.joining]
    stale = one.ask("old", Call("d4", 0, 0, DataReady("d4", joined[0], 1)))
    assert stale == DataReadyReply(False)  # a report for another epoch counts for nothing
    for p in joined:
        assert one.ask(("ready", p), Call("d4", 0, 0, DataReady("d4", p, 2))) == DataReadyReply(True)
    for _ in range(20):
        one.step()
    settled = committed()
    assert settled.epoch == 3 and settled.moving == ()
    assert all("d4" in settled.readers_for(p) for p in joined)

"""The controller: when a new map is proposed, what it holds, and the compare-and-set that commits it.

Claims (keel.data.controller): a burst of membership changes gives one
map, `settle` after its last change but never later than `max_wait` after
its first; ready reports count only for the committed epoch, for a member
that still joins that partition, and are proposed together; one proposal
is out at a time; a proposal commits only if the map key is as read, so
two controllers can never both commit from the same map.
"""

from __future__ import annotations

import random

import attrs
import pytest

from keel.core.api import CommitMap, CommitMapReply, KeyValue, LeaseGrant, LeaseRevoke, Range, RegisterMember
from keel.data.controller import (
    Controller, ControllerConfig, Member, Proposal, ReadyReport, map_request, members_from_kvs,
)
from keel.data.partition_map import MapError, PartitionMap
from keel.data.placement import place, ready_all
from tests.core.machines import Feed, get

MAP_KEY = b"keel/data/map"
PREFIX = b"keel/data/members/"
CONFIG = ControllerConfig(map_key=MAP_KEY, member_prefix=PREFIX, partitions=16, replicas=3, settle=2.0,
                          max_wait=10.0)


def members(*nodes: str) -> list[Member]:
    return [Member(node, 100 + i) for i, node in enumerate(nodes)]


def started(*nodes: str, current: PartitionMap | None = None, revision: int = 0, now: float = 0.0) -> Controller:
    c = Controller(CONFIG)
    c.members(members(*nodes), now)
    c.committed(current, revision)
    c.tick(now)
    return c


def proposal_at(c: Controller, now: float) -> Proposal | None:
    c.tick(now)
    return c.poll().proposal


def won(proposal: Proposal, revision: int) -> CommitMapReply:
    return CommitMapReply(revision=revision, committed=True, mod_revision=revision)


def lost(revision: int) -> CommitMapReply:
    return CommitMapReply(revision=revision, committed=False, mod_revision=revision)


# --- config ------------------------------------------------------------------------------


def test_the_config_defaults_to_64_partitions_3_replicas_2s_settle_10s_max_wait():
    config = ControllerConfig(map_key=MAP_KEY, member_prefix=PREFIX)
    assert (config.partitions, config.replicas, config.settle, config.max_wait) == (64, 3, 2.0, 10.0)


@pytest.mark.parametrize(("changes", "says"), [
    ({"map_key": b""}, "b'' is not a key"),
    ({"map_key": "keel/map"}, "is not a key"),
    ({"member_prefix": b""}, "b'' is not a key"),
    ({"partitions": 0}, "0 is not a whole number from 1 to 65536"),
    ({"partitions": 2**16 + 1}, "65537 is not a whole number"),
    ({"partitions": 8.0}, "8.0 is not a whole number"),
    ({"replicas": 0}, "0 is not a whole number of at least 1"),
    ({"replicas": True}, "True is not a whole number"),
    ({"settle": -1.0}, "-1.0 is not a duration"),
    ({"settle": float("nan")}, "nan is not a duration"),
    ({"max_wait": float("inf")}, "inf is not a duration"),
    ({"settle": 5.0, "max_wait": 4.0}, "4.0 is below settle \\(5.0\\)"),
    ({"member_prefix": b"keel/data/"}, "holds map_key"),
])
def test_the_config_refuses_what_breaks_a_rule(changes, says):
    fields = {"map_key": MAP_KEY, "member_prefix": PREFIX} | changes
    with pytest.raises(ValueError, match=says):
        ControllerConfig(**fields)


def test_settle_zero_and_whole_seconds_are_fine():
    config = ControllerConfig(map_key=MAP_KEY, member_prefix=PREFIX, settle=0, max_wait=3)
    assert (config.settle, config.max_wait) == (0, 3)


# --- membership from keys ----------------------------------------------------------------


def test_members_are_read_from_their_ephemeral_keys():
    kvs = [
        KeyValue(PREFIX + b"n2", b"addr", 5, 5, 1, lease=7),
        KeyValue(PREFIX + b"n1", b"addr", 4, 4, 1, lease=9),
        KeyValue(PREFIX + b"pinned", b"addr", 6, 6, 1, lease=0),  # no lease: would never expire
        KeyValue(PREFIX + b"", b"addr", 6, 6, 1, lease=3),
        KeyValue(PREFIX + b"\xff\xfe", b"addr", 6, 6, 1, lease=3),
        KeyValue(b"keel/data/other", b"addr", 6, 6, 1, lease=3),
    ]
    assert members_from_kvs(PREFIX, kvs) == (Member("n1", 9), Member("n2", 7))


def test_a_node_given_twice_is_a_caller_bug():
    with pytest.raises(ValueError, match="'a' given twice"):
        Controller(CONFIG).members([Member("a", 1), Member("a", 2)], 0.0)


# --- settle and max_wait -----------------------------------------------------------------


def test_nothing_is_proposed_before_membership_and_the_map_are_known():
    c = Controller(CONFIG)
    c.tick(100.0)
    assert c.poll().proposal is None
    c.members(members("a", "b", "c"), 100.0)
    assert proposal_at(c, 200.0) is None
    d = Controller(CONFIG)
    d.committed(None, 0)
    assert proposal_at(d, 200.0) is None


def test_the_first_map_waits_for_membership_to_settle():
    c = started("a", "b", "c")
    out = c.poll()
    assert out.proposal is None and out.wake_at == 2.0
    assert proposal_at(c, 1.99) is None
    proposal = proposal_at(c, 2.0)
    assert proposal.map == place(None, ["a", "b", "c"], 16, 3)
    assert proposal.map.epoch == 1 and proposal.base_revision == 0


def test_a_burst_of_joins_gives_one_map():
    c = started("a", "b", "c")
    for i, now in enumerate([0.5, 1.5, 3.0, 4.5]):
        c.members(members("a", "b", "c", *[f"j{k}" for k in range(i + 1)]), now)
        assert proposal_at(c, now) is None
    assert c.poll().wake_at == 6.5
    assert proposal_at(c, 6.49) is None
    proposal = proposal_at(c, 6.5)
    assert proposal.map.nodes == ("a", "b", "c", "j0", "j1", "j2", "j3")


def test_a_steady_trickle_waits_no_longer_than_max_wait():
    c = started("a")
    nodes = ["a"]
    now = 0.0
    while True:
        now += 1.5
        nodes.append(f"t{int(now * 10)}")
        c.members(members(*nodes), now)
        proposal = proposal_at(c, now)
        if proposal is not None:
            break
        assert c.poll().wake_at <= 10.0
    assert now == 10.5  # the first tick at or past 0 + max_wait
    assert set(proposal.map.nodes) == set(nodes)


def test_a_departure_settles_too_and_drops_the_node():
    first = place(None, ["a", "b", "c", "d"], 16, 3)
    c = started("a", "b", "c", "d", current=first, revision=5)
    assert proposal_at(c, 10.0) is None  # nothing changed
    c.members(members("a", "b", "c"), 11.0)
    assert proposal_at(c, 12.9) is None
    proposal = proposal_at(c, 13.0)
    assert proposal.map == place(first, ["a", "b", "c"], 16, 3)
    assert "d" not in proposal.map.nodes and proposal.base_revision == 5


def test_a_lease_change_alone_changes_nothing():
    first = place(None, ["a", "b", "c"], 16, 3)
    c = started("a", "b", "c", current=first, revision=5)
    assert proposal_at(c, 5.0) is None
    c.members([Member("a", 900), Member("b", 901), Member("c", 902)], 6.0)
    assert c.poll().wake_at is None
    assert proposal_at(c, 100.0) is None


def test_a_new_leader_with_a_map_that_fits_proposes_nothing():
    current = ready_all(place(None, ["a", "b"], 16, 3), [])
    c = started("a", "b", current=current, revision=8)
    assert proposal_at(c, 1000.0) is None


def test_the_committed_maps_partition_count_wins_over_the_config():
    current = place(None, ["a", "b", "c"], 8, 3)
    c = started("a", "b", "c", "d", current=current, revision=3)
    assert proposal_at(c, 2.0).map.partitions == 8


# --- the proposal and its compare-and-set ------------------------------------------------


def test_the_proposal_commits_only_if_the_map_key_is_as_read():
    first = place(None, ["a", "b", "c"], 16, 3)
    c = started("a", "b", "c", "d", current=first, revision=41)
    proposal = proposal_at(c, 2.0)
    assert proposal.request == map_request(proposal.map, 41) == CommitMap(proposal.map.to_bytes(), 41)


def test_one_proposal_at_a_time_until_it_is_answered():
    c = started("a", "b", "c")
    proposal = proposal_at(c, 2.0)
    c.members(members("a", "b", "c", "d"), 2.5)
    assert proposal_at(c, 100.0) is None
    assert c.pending is proposal
    c.answered(proposal, won(proposal, 7))
    assert c.pending is None
    nxt = proposal_at(c, 100.0)
    assert nxt.base_revision == 7 and nxt.map.epoch == 2 and "d" in nxt.map.nodes


def test_a_won_proposal_is_the_new_base_and_nothing_more_is_proposed():
    c = started("a", "b", "c")
    proposal = proposal_at(c, 2.0)
    c.answered(proposal, won(proposal, 7))
    assert proposal_at(c, 50.0) is None


def test_a_lost_proposal_adopts_the_winner_and_places_again_at_once():
    c = started("a", "b", "c", "d")
    mine = proposal_at(c, 2.0)
    theirs = place(None, ["a", "b", "c"], 16, 3)  # another controller, before d joined
    c.answered(mine, lost(9))
    assert c.pending is None
    c.committed(theirs, 9)  # what the driver reads next
    again = proposal_at(c, 2.0)
    assert again.base_revision == 9 and again.map.epoch == 2
    assert again.map == place(theirs, ["a", "b", "c", "d"], 16, 3)


def test_a_proposal_without_a_reply_may_go_again():
    c = started("a", "b", "c")
    first = proposal_at(c, 2.0)
    c.unanswered(first)
    again = proposal_at(c, 2.0)
    assert again == first and again is not first


def test_an_answer_always_ends_its_proposal_even_one_that_says_nothing_new():
    c = started("a", "b", "c")
    proposal = proposal_at(c, 2.0)
    c.answered(proposal, CommitMapReply(1, False, 0))  # lost, yet the key is absent
    assert c.pending is None
    assert proposal_at(c, 2.0) == proposal


def test_a_watch_showing_the_key_moved_ends_the_pending_proposal():
    c = started("a", "b", "c")
    proposal = proposal_at(c, 2.0)
    c.committed(proposal.map, 12)
    assert c.pending is None and proposal_at(c, 3.0) is None


def test_an_older_read_is_ignored():
    first = place(None, ["a", "b", "c"], 16, 3)
    later = place(first, ["a", "b", "c", "d"], 16, 3)
    c = started("a", "b", "c", "d", current=later, revision=20)
    c.committed(first, 10)
    assert proposal_at(c, 5.0) is None  # `later` already fits the members


# --- ready reports -------------------------------------------------------------------------


def moving_map() -> PartitionMap:
    return place(place(None, ["a", "b", "c"], 16, 3), ["a", "b", "c", "d"], 16, 3)


def test_ready_reports_for_the_committed_epoch_are_proposed_together_at_once():
    current = moving_map()
    c = started("a", "b", "c", "d", current=current, revision=30, now=50.0)
    joined = current.partitions_of("d")[:3]
    for p in joined:
        assert c.ready(ReadyReport(p, "d", current.epoch))
    proposal = proposal_at(c, 50.0)
    assert proposal.map == ready_all(current, [(p, "d") for p in joined])
    assert proposal.map.epoch == current.epoch + 1


def test_a_report_for_another_epoch_is_ignored():
    current = moving_map()
    c = started("a", "b", "c", "d", current=current, revision=30, now=50.0)
    p = current.partitions_of("d")[0]
    assert not c.ready(ReadyReport(p, "d", current.epoch - 1))
    assert not c.ready(ReadyReport(p, "d", current.epoch + 1))
    assert proposal_at(c, 50.0) is None


@pytest.mark.parametrize("report", [
    ReadyReport(0, "zz", 2),  # not in the map
    ReadyReport(99, "d", 2),  # no such partition
])
def test_a_report_from_a_node_not_joining_that_partition_is_ignored(report):
    current = moving_map()
    c = started("a", "b", "c", "d", current=current, revision=30, now=50.0)
    assert not c.ready(report)
    owner = current.placements[0].owners[0]
    assert not c.ready(ReadyReport(0, owner, current.epoch))
    assert proposal_at(c, 50.0) is None


def test_reports_pending_when_a_new_map_lands_are_dropped():
    current = moving_map()
    c = started("a", "b", "c", "d", current=current, revision=30, now=50.0)
    c.members(members("a", "b", "c", "d", "e"), 50.0)  # settles until 52
    p, q = current.partitions_of("d")[:2]
    assert c.ready(ReadyReport(p, "d", current.epoch))
    proposal = proposal_at(c, 50.0)  # ready reports do not wait for the membership change
    assert proposal.map == ready_all(current, [(p, "d")])
    assert c.ready(ReadyReport(q, "d", current.epoch))  # arrives while the proposal is out
    c.answered(proposal, won(proposal, 31))
    nxt = proposal_at(c, 52.0)
    assert nxt.map == place(proposal.map, ["a", "b", "c", "d", "e"], 16, 3)  # q's report was for the old epoch
    assert nxt.map.placements[q].joining != ()


def test_reports_and_a_settled_change_go_in_one_map_one_epoch_up():
    current = moving_map()
    c = started("a", "b", "c", "d", current=current, revision=30, now=50.0)
    c.members(members("a", "b", "c", "d", "e"), 50.0)
    p = current.partitions_of("d")[0]
    assert c.ready(ReadyReport(p, "d", current.epoch))
    proposal = proposal_at(c, 52.0)
    assert proposal.map.epoch == current.epoch + 1
    assert proposal.map.placements == place(ready_all(current, [(p, "d")]), ["a", "b", "c", "d", "e"], 16, 3).placements


def test_a_report_from_a_departed_node_is_ignored():
    current = moving_map()
    c = started("a", "b", "c", "d", current=current, revision=30, now=50.0)
    p = current.partitions_of("d")[0]
    assert c.ready(ReadyReport(p, "d", current.epoch))
    c.members(members("a", "b", "c"), 50.0)
    proposal = proposal_at(c, 60.0)
    assert proposal.map == place(current, ["a", "b", "c"], 16, 3)


# --- against the core's own state machine --------------------------------------------------


def read_map(feed: Feed) -> tuple[PartitionMap | None, int]:
    kv = get(feed, MAP_KEY)
    return (PartitionMap.from_bytes(kv.value), kv.mod_revision) if kv is not None else (None, 0)


def test_two_controllers_from_the_same_read_never_both_commit():
    feed = Feed()
    one, two = started("a", "b", "c"), Controller(attrs.evolve(CONFIG, replicas=2))
    two.members(members("a", "b", "c"), 0.0)
    two.committed(None, 0)
    p1, p2 = proposal_at(one, 2.0), proposal_at(two, 2.0)
    assert p1.map != p2.map
    r1, r2 = feed.send(p1.request), feed.send(p2.request, client="bob")
    assert (r1.committed, r2.committed) == (True, False)
    two.answered(p2, r2)
    one.answered(p1, r1)
    assert read_map(feed) == (p1.map, r1.mod_revision)
    # The loser reads the winner and builds on it, at the new revision.
    two.committed(*read_map(feed))
    p3 = proposal_at(two, 2.0)
    assert p3.base_revision == r1.mod_revision and p3.map.epoch == 2
    assert feed.send(p3.request, client="bob").committed


@pytest.mark.seeds(5)
def test_a_driven_cluster_converges_to_a_settled_balanced_map(seed):
    """A toy driver over the real core machine: members as leased keys, proposals as CommitMap, nodes reporting."""
    rng = random.Random(seed)
    feed = Feed()
    controller = Controller(CONFIG)
    leases = {}
    now = 0.0

    def register(node: str) -> None:
        lease = 1000 + len(leases)
        feed.send(LeaseGrant(ttl=10.0, id=lease))
        feed.send(RegisterMember(node, b"addr", lease))
        leases[node] = lease

    for node in ["a", "b", "c"]:
        register(node)
    for _ in range(200):
        now += rng.choice([0.1, 0.5, 1.0, 3.0])
        roll = rng.random()
        if roll < 0.05 and len(leases) < 9:
            register(f"n{len(leases)}")
        elif roll < 0.08 and len(leases) > 1:
            gone = rng.choice(sorted(leases))
            feed.send(LeaseRevoke(leases.pop(gone)))  # its key goes with its lease, as on expiry
        kvs = feed.machine.read(Range(PREFIX, prefix=True)).kvs
        controller.members(members_from_kvs(PREFIX, kvs), now)
        controller.committed(*read_map(feed))
        current, _ = read_map(feed)
        if current is not None:
            for p, placement in enumerate(current.placements):
                for node in placement.joining:
                    if rng.random() < 0.3:
                        controller.ready(ReadyReport(p, node, current.epoch))
        controller.tick(now)
        proposal = controller.poll().proposal
        if proposal is not None:
            controller.answered(proposal, feed.send(proposal.request))
    # Quiet down: everyone reports until nothing more is proposed.
    for _ in range(50):
        now += 5.0
        current, revision = read_map(feed)
        controller.committed(current, revision)
        for p, placement in enumerate(current.placements):
            for node in placement.joining:
                controller.ready(ReadyReport(p, node, current.epoch))
        controller.tick(now)
        proposal = controller.poll().proposal
        if proposal is None:
            break
        controller.answered(proposal, feed.send(proposal.request))
    final, _ = read_map(feed)
    assert final.moving == ()
    assert set(final.nodes) == set(leases)
    assert place(final, sorted(leases), 16, 3) is None


"""Placement: balanced, deterministic, moving as little as it can, in two steps.

The claims (docs/data.md, "Placement"): every partition aims at
`min(N, n)` distinct members; every member aims at ⌊P·r/n⌋ or ⌈P·r/n⌉
partitions; a change streams no more copies than balance forces (the
lower bound below), a join exactly the joiner's share and a leave
exactly what the leaver held; a node never serves reads of a partition
before it reports ready, unless nobody else is left to; a departed node
is named nowhere in the next map; same inputs, same map.
"""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from keel.data.partition_map import PartitionMap, Placement
from keel.data.placement import place, ready, ready_all, target_loads


def nodes(n: int) -> list[str]:
    return [f"n{i:02d}" for i in range(n)]


def settle(m: PartitionMap) -> PartitionMap:
    """Every joiner reports ready."""
    reports = [(p, node) for p, placement in enumerate(m.placements) for node in placement.joining]
    return ready_all(m, reports) if reports else m


def copies(before: PartitionMap | None, after: PartitionMap) -> int:
    """Replicas the cluster must stream: nodes `after` aims at that did not own the partition `before`."""
    if before is None:
        return 0
    return sum(len(set(a.target()) - set(b.owners)) for a, b in zip(after.placements, before.placements, strict=True))


def additions(before: PartitionMap, after: PartitionMap, members: set[str]) -> int:
    """Nodes added to partitions' targets (a leaver asked to stay counts too)."""
    return sum(len(set(a.target()) - (set(b.target()) & members))
               for a, b in zip(after.placements, before.placements, strict=True))


def lower_bound(before: PartitionMap, members: set[str], replicas: int) -> int:
    """The fewest additions any balanced map for `members` needs, starting from `before`.

    Every replica slot a departure emptied must be filled, and every node
    must end at its quota; the quotas that force the fewest additions give
    the ceilings to the nodes that aim at the most already.
    """
    r = min(replicas, len(members))
    targets = [set(p.target()) & members for p in before.placements]
    load = dict.fromkeys(members, 0)
    for target in targets:
        for node in target:
            load[node] += 1
    base, extra = divmod(len(targets) * r, len(members))
    busiest = sorted(members, key=lambda n: (-load[n], n))
    quota = {n: base + (i < extra) for i, n in enumerate(busiest)}
    holes = sum(max(0, r - len(t)) for t in targets)
    return max(holes, sum(max(0, quota[n] - load[n]) for n in members))


def assert_balanced(m: PartitionMap, members: set[str] | list[str]) -> None:
    members = set(members)
    r = min(m.replicas, len(members))
    base = m.partitions * r // len(members)
    loads = target_loads(m)
    assert set(loads) <= members
    assert all(len(p.target()) == r for p in m.placements)
    assert all(base <= loads.get(n, 0) <= base + 1 for n in members), loads


# --- a first map ---------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 12, 30])
def test_the_first_map_gives_each_partition_distinct_owners_and_each_node_its_share(n):
    m = place(None, nodes(n), 64, 3)
    m.check()
    assert m.epoch == 1 and m.partitions == 64 and m.replicas == 3
    assert m.moving == ()
    assert_balanced(m, nodes(n))


def test_with_fewer_members_than_replicas_every_partition_uses_all_of_them():
    m = place(None, ["a", "b"], 16, 3)
    assert all(p.owners == ("a", "b") for p in m.placements)


def test_more_members_than_replica_slots_leaves_some_idle_but_none_above_one():
    m = place(None, nodes(10), 2, 2)
    assert sorted(target_loads(m).values()) == [1, 1, 1, 1]


def test_no_members_gives_no_map():
    assert place(None, [], 64, 3) is None
    assert place(place(None, ["a"], 8, 3), [], 8, 3) is None


# --- determinism ---------------------------------------------------------------------


@pytest.mark.seeds(5)
def test_the_same_inputs_give_the_same_map_in_any_member_order(seed):
    rng = random.Random(seed)
    members = nodes(rng.randint(1, 15))
    m = place(None, members, 64, 3)
    shuffled = members[:]
    rng.shuffle(shuffled)
    assert place(None, shuffled, 64, 3) == m
    assert place(None, set(members), 64, 3) == m
    later = members[1:] + ["late"]
    rng.shuffle(later)
    assert place(m, later, 64, 3) == place(m, sorted(later), 64, 3) == place(m, set(later), 64, 3)


HISTORY = """
from keel.data.placement import place, ready
m = place(None, ["n1", "n2", "n3", "n4"], 16, 3)
m = place(m, ["n2", "n3", "n4", "n5", "n6"], 16, 3)
m = ready(m, m.moving[0], m.placements[m.moving[0]].joining[0])
print(m.to_bytes().hex())
"""


def test_the_same_inputs_give_the_same_bytes_in_any_process():
    """Nothing depends on Python's per-process string hashing or on set order."""
    outputs = {subprocess.run([sys.executable, "-c", HISTORY], capture_output=True, text=True, check=True,
                              env={"PYTHONHASHSEED": str(hash_seed)}).stdout for hash_seed in (1, 2)}
    assert len(outputs) == 1


def test_a_map_that_fits_its_members_is_left_alone():
    m = place(None, nodes(5), 64, 3)
    assert place(m, nodes(5), 64, 3) is None
    joined = place(m, nodes(6), 64, 3)
    assert place(joined, nodes(6), 64, 3) is None
    assert place(settle(joined), nodes(6), 64, 3) is None


# --- one join, one leave: the measured bounds in docs/data.md ------------------------


@pytest.mark.parametrize(("n", "streamed"), [(3, 48), (6, 27), (12, 14)])
def test_one_join_streams_only_the_joiners_share(n, streamed):
    m = place(None, nodes(n), 64, 3)
    joined = place(m, nodes(n) + ["new"], 64, 3)
    joined.check()
    assert joined.epoch == m.epoch + 1
    assert copies(m, joined) == streamed == 64 * 3 // (n + 1)
    # Two steps: the joiner only joins; each of its partitions names one leaver; reads stay where they were.
    assert joined.partitions_of("new") == tuple(i for i, p in enumerate(joined.placements) if p.joining == ("new",))
    for before, after in zip(m.placements, joined.placements, strict=True):
        assert after.readers() == before.readers()
        assert len(after.leaving) == len(after.joining)
    assert_balanced(joined, nodes(n) + ["new"])


@pytest.mark.parametrize(("n", "streamed"), [(3, 0), (6, 32), (12, 16)])
def test_one_leave_streams_only_what_the_leaver_held(n, streamed):
    m = place(None, nodes(n), 64, 3)
    gone = nodes(n)[0]
    left = place(m, nodes(n)[1:], 64, 3)
    left.check()
    assert gone not in left.nodes
    assert copies(m, left) == streamed == (target_loads(m)[gone] if n > 3 else 0)
    assert_balanced(left, nodes(n)[1:])


def test_a_departed_node_stops_serving_at_once_even_mid_move():
    m = place(None, nodes(4), 16, 3)
    moving = place(m, nodes(5), 16, 3)
    joiner_gone = place(moving, nodes(4), 16, 3)
    owner_gone = place(moving, nodes(5)[1:], 16, 3)
    assert "n04" not in joiner_gone.nodes
    assert "n00" not in owner_gone.nodes
    # With the joiner gone, the leavers it was to replace simply stay.
    assert joiner_gone.placements == m.placements


def test_a_partition_with_no_owner_left_is_owned_by_its_target_at_once():
    m = PartitionMap(epoch=3, replicas=2, placements=[
        Placement(owners=("a", "b"), joining=("c",), leaving=("b",)),
        Placement(owners=("a", "c")),
    ])
    after = place(m, ["c", "d"], 2, 2)
    after.check()
    assert after.placements[0].joining == () and set(after.placements[0].owners) == {"c", "d"}


def test_lowering_replicas_drops_copies_at_once_and_streams_nothing():
    m = place(None, nodes(6), 64, 3)
    fewer = place(m, nodes(6), 64, 2)
    assert fewer.replicas == 2 and copies(m, fewer) == 0 and fewer.moving == ()
    assert_balanced(fewer, nodes(6))


@pytest.mark.parametrize("names", [("a", "b", "c"), ("c", "b", "a"), ("x", "y", "z"), ("n1", "n2", "n3"),
                                   ("n4", "n5", "n6"), ("p", "q", "r")])
def test_lowering_replicas_spreads_the_drops_over_the_busiest(names):
    m = PartitionMap(epoch=1, replicas=3, placements=[Placement(owners=names)] * 2)
    fewer = place(m, names, 2, 2)
    assert copies(m, fewer) == 0 and fewer.moving == ()
    assert sorted(target_loads(fewer).values()) == [1, 1, 2]


def test_lowering_replicas_mid_move_drops_the_joiner_first():
    m = PartitionMap(epoch=1, replicas=3, placements=[Placement(owners=("a", "b", "c"), joining=("d",),
                                                                leaving=("c",))])
    fewer = place(m, ["a", "b", "c", "d"], 1, 2)
    assert fewer.placements == (Placement(owners=("a", "b")),)


@pytest.mark.parametrize("names", [("a", "b", "c", "d"), ("d", "c", "b", "a"), ("p", "q", "r", "s"),
                                   ("s", "q", "r", "p"), ("n1", "n7", "n3", "n9")])
def test_a_hole_is_filled_by_a_leaver_that_still_holds_the_records(names):
    a, b, c, d = names
    m = PartitionMap(epoch=1, replicas=2, placements=[
        Placement(owners=(a, b), joining=(c,), leaving=(b,)),
        Placement(owners=(b, d)),
    ])
    after = place(m, [b, c, d], 2, 2)  # a departs: partition 0 has a hole, b or d could fill it
    assert set(after.placements[0].target()) == {b, c}
    assert copies(m, after) == 1  # c's, already on its way


@pytest.mark.parametrize("names", [("a", "b"), ("b", "a"), ("x", "y"), ("y", "x"), ("n10", "n2")])
def test_balancing_undoes_a_move_before_starting_a_new_one(names):
    a, b = names
    m = PartitionMap(epoch=1, replicas=1, placements=[
        Placement(owners=(a,), joining=(b,), leaving=(a,)),
        Placement(owners=(b,)),
    ])
    after = place(m, [a, b], 2, 1)  # b aims at both partitions; one must go back to a
    assert after.placements == (Placement(owners=(a,)), Placement(owners=(b,)))
    assert copies(m, after) == 0


def test_surplus_leavers_beyond_the_joiners_go_at_once_the_last_ones_staying():
    m = PartitionMap(epoch=1, replicas=3, placements=[
        Placement(owners=("a", "b", "c"), joining=("d", "e"), leaving=("b", "c")),
    ])
    after = place(m, ["a", "b", "c", "d"], 1, 2)  # e departs and only two replicas remain wanted
    assert after.placements == (Placement(owners=("a", "c"), joining=("d",), leaving=("c",)),)
    assert ready(after, 0, "d").placements == (Placement(owners=("a", "d")),)


def test_raising_replicas_adds_joiners():
    m = place(None, nodes(6), 64, 2)
    more = place(m, nodes(6), 64, 3)
    assert copies(m, more) == 64
    assert all(len(p.joining) == 1 and not p.leaving for p in more.placements)
    assert_balanced(more, nodes(6))


# --- ready ----------------------------------------------------------------------------


def test_ready_promotes_the_joiner_and_drops_its_leaver_in_the_next_epoch():
    m = place(place(None, nodes(3), 8, 3), nodes(4), 8, 3)
    p = m.partitions_of("n03")[0]
    leaver = m.placements[p].leaving[0]
    after = ready(m, p, "n03")
    after.check()
    assert after.epoch == m.epoch + 1
    assert after.placements[p].owners == m.placements[p].target()
    assert leaver not in after.replicas_for(p)
    assert [q for i, q in enumerate(after.placements) if i != p] == [q for i, q in enumerate(m.placements) if i != p]


def test_ready_all_promotes_many_in_one_epoch():
    m = place(place(None, nodes(3), 8, 3), nodes(4), 8, 3)
    done = settle(m)
    assert done.epoch == m.epoch + 1 and done.moving == ()
    assert [p.owners for p in done.placements] == [p.target() for p in m.placements]


def test_ready_refuses_a_node_that_is_not_joining():
    m = place(None, nodes(3), 8, 3)
    with pytest.raises(ValueError, match="not joining"):
        ready(m, 0, "n00")
    with pytest.raises(ValueError, match="partition 8 is outside"):
        ready(m, 8, "n00")


# --- refused inputs -------------------------------------------------------------------


@pytest.mark.parametrize(("args", "says"), [
    ((None, ["a", ""], 8, 3), "is not a node id"),
    ((None, ["a", 3], 8, 3), "is not a node id"),
    ((None, ["a"], 0, 3), "partitions: 0 is outside"),
    ((None, ["a"], 8, 0), "replicas: 0"),
    ((PartitionMap(epoch=1, replicas=3, placements=[Placement(owners=("a",))]), ["a"], 8, 3),
     "partitions: 8 differs from the map's 1"),
])
def test_place_refuses_bad_input(args, says):
    with pytest.raises(ValueError, match=says):
        place(*args)


# --- random histories -----------------------------------------------------------------


@pytest.mark.seeds(25)
def test_random_joins_leaves_and_ready_reports_keep_every_promise(seed):
    rng = random.Random(seed)
    partitions, replicas = rng.choice([1, 8, 16, 64, 100]), rng.choice([1, 2, 3, 5])
    members: set[str] = set()
    m: PartitionMap | None = None
    fresh = 0
    for _ in range(60):
        roll = rng.random()
        if roll < 0.25 and m is not None and m.moving:
            joiners = [(p, node) for p, pl in enumerate(m.placements) for node in pl.joining]
            reported = rng.sample(joiners, rng.randint(1, len(joiners))) if joiners else []
            if reported:
                after = ready_all(m, reported)
                after.check()
                assert [p.target() for p in after.placements] == [p.target() for p in m.placements]
                m = after
            continue
        if roll < 0.65 or not members:
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                members.add(f"x{fresh}")
                fresh += 1
        else:
            for _ in range(min(len(members), rng.choice([1, 1, 1, 2]))):
                members.discard(rng.choice(sorted(members)))
        if not members:
            assert place(m, members, partitions, replicas) is None
            continue
        after = place(m, members, partitions, replicas)
        assert after == place(m, sorted(members, reverse=True), partitions, replicas)
        if after is None:
            assert m is not None
            assert_balanced(m, members)
            continue
        after.check()
        assert after.epoch == (m.epoch + 1 if m else 1)
        assert set(after.nodes) <= members
        assert_balanced(after, members)
        assert place(after, members, partitions, replicas) is None
        if m is not None:
            assert additions(m, after, members) <= lower_bound(m, members, replicas) + 1
            for before, now in zip(m.placements, after.placements, strict=True):
                live_owners = set(before.owners) & members
                if live_owners:
                    # Two steps: nobody starts serving reads here before reporting ready.
                    assert set(now.owners) <= live_owners
                    # And an owner that stays in the target keeps serving.
                    assert live_owners & set(now.target()) <= set(now.owners)
        m = after


@pytest.mark.seeds(3)
def test_random_histories_almost_always_meet_the_lower_bound_exactly(seed):
    rng = random.Random(seed)
    events = above = 0
    for _ in range(10):
        members = set(nodes(rng.randint(1, 12)))
        m = place(None, members, 64, 3)
        for _ in range(20):
            if rng.random() < 0.5 or len(members) == 1:
                members.add(f"y{rng.randrange(10**6)}")
            else:
                members.discard(rng.choice(sorted(members)))
            after = place(m, members, 64, 3)
            if after is None:
                continue
            events += 1
            above += additions(m, after, members) > lower_bound(m, members, 3)
            m = after if rng.random() < 0.5 else settle(after)
    assert above <= events // 100

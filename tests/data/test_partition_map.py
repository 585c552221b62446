"""The partition map: key hashing, replica sets during a move, its rules, and its bytes.

A partition's writers are its owners and joiners (a joiner must see every
write made during the move), its readers only the owners (a joiner may
still lack older records); `check()` refuses a map that breaks a rule and
`from_bytes` anything that is not a canonical, well-formed map.
"""

from __future__ import annotations

import hashlib

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel import wire
from keel.data.partition_map import MapError, PartitionMap, Placement, partition_of
from keel.errors import KeelError

RUNS = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

MOVING = Placement(owners=("a", "b", "c"), joining=("d",), leaving=("c",))
SETTLED = Placement(owners=("a", "b", "d"))


def example_map(epoch: int = 4) -> PartitionMap:
    return PartitionMap(epoch=epoch, replicas=3, placements=(MOVING, SETTLED, Placement(owners=("b", "c", "d"))))


# --- partition_of -------------------------------------------------------------------


@pytest.mark.parametrize(("key", "partitions", "expected"), [
    (b"", 64, 3),
    (b"a", 64, 17),
    (b"user/42", 64, 49),
    (b"user/42", 1000, 753),
    (bytes(range(256)), 64, 10),
    (bytes(range(256)), 1000, 346),
])
def test_partition_of_is_pinned_forever(key, partitions, expected):
    """Changing the hash would strand every stored key: these values never change."""
    assert partition_of(key, partitions) == expected


@RUNS
@given(key=st.binary(max_size=64), partitions=st.integers(1, 2**16))
def test_partition_of_is_the_blake2b_prefix_modulo_the_count(key, partitions):
    assert partition_of(key, partitions) == int.from_bytes(hashlib.blake2b(key).digest()[:8], "big") % partitions


def test_partition_of_spreads_keys_evenly():
    counts = [0] * 64
    for i in range(64_000):
        counts[partition_of(f"key-{i}".encode(), 64)] += 1
    assert min(counts) > 850 and max(counts) < 1150


@pytest.mark.parametrize("partitions", [0, -1, 2.0, True])
def test_partition_of_refuses_a_count_that_is_not_a_positive_integer(partitions):
    with pytest.raises(ValueError, match="partitions"):
        partition_of(b"k", partitions)


# --- replica sets -------------------------------------------------------------------


def test_a_moving_partition_writes_to_owners_and_joiners_but_reads_only_from_owners():
    assert MOVING.writers() == ("a", "b", "c", "d")
    assert MOVING.readers() == ("a", "b", "c")
    assert MOVING.target() == ("a", "b", "d")


def test_the_map_answers_per_partition_and_per_node():
    m = example_map()
    assert m.partitions == 3
    assert m.replicas_for(0) == ("a", "b", "c", "d")
    assert m.readers_for(0) == ("a", "b", "c")
    assert m.partitions_of("d") == (0, 1, 2)
    assert m.partitions_of("a") == (0, 1)
    assert m.partitions_of("z") == ()
    assert m.nodes == ("a", "b", "c", "d")
    assert m.moving == (0,)
    assert m.partition_for(b"user/42") == partition_of(b"user/42", 3)


def test_a_partition_with_a_leaver_counts_as_moving():
    waiting = PartitionMap(epoch=2, replicas=3, placements=(SETTLED, Placement(owners=("a", "b", "c"), leaving=("c",))))
    assert waiting.moving == (1,)


def test_node_lists_are_kept_sorted():
    assert Placement(owners=["c", "a", "b"]).owners == ("a", "b", "c")


def test_promoting_a_joiner_makes_it_an_owner_and_lets_the_leaver_go():
    assert MOVING.promoted("d") == Placement(owners=("a", "b", "d"))


def test_a_leaver_stays_while_a_joiner_is_still_on_its_way():
    two = Placement(owners=("a", "b", "c"), joining=("d", "e"), leaving=("b", "c"))
    one = two.promoted("e")
    assert one == Placement(owners=("a", "c", "e"), joining=("d",), leaving=("c",))
    assert one.target() == two.target()
    assert one.promoted("d") == Placement(owners=("a", "d", "e"))


def test_promoting_without_a_leaver_adds_a_replica():
    assert Placement(owners=("a", "b"), joining=("c",)).promoted("c") == Placement(owners=("a", "b", "c"))


def test_promoting_a_node_that_is_not_joining_is_a_caller_bug():
    with pytest.raises(ValueError, match="not joining"):
        MOVING.promoted("a")


# --- check ------------------------------------------------------------------------------


def test_a_well_formed_map_passes_check():
    example_map().check()


@pytest.mark.parametrize(("changes", "says"), [
    ({"epoch": 0}, "epoch 0 is not a whole number of at least 1"),
    ({"epoch": True}, "epoch True"),
    ({"replicas": 0}, "replicas 0"),
    ({"placements": ()}, "0 partitions is outside"),
    ({"placements": (Placement(owners=("a", "a")),)}, "partition 0: owners: ['a', 'a'] is not sorted without repeats"),
    ({"placements": (Placement(owners=("a", "")),)}, "partition 0: owners: '' is not a node id"),
    ({"placements": (Placement(owners=("a", "b"), joining=("b",)),)}, "partition 0: 'b' is both owner and joining"),
    ({"placements": (Placement(owners=("a",), leaving=("b",)),)}, "partition 0: 'b' is leaving but is not an owner"),
    ({"placements": (Placement(joining=("a",)),)}, "partition 0: joining ['a'] with no owner"),
    ({"placements": (Placement(owners=("a", "b", "c", "d")),)}, "target ['a', 'b', 'c', 'd'] has more than 3"),
    ({"placements": (SETTLED, Placement(owners=("a", "b")))}, "partition 1 aims at 2 replicas, partition 0 at 3"),
])
def test_check_names_what_is_wrong(changes, says):
    bad = PartitionMap(**{"epoch": 4, "replicas": 3, "placements": (SETTLED,)} | changes)
    with pytest.raises(MapError) as caught:
        bad.check()
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, KeelError)


def test_check_refuses_a_placement_that_is_not_one():
    with pytest.raises(MapError, match="partition 0: tuple is not a Placement"):
        PartitionMap(epoch=1, replicas=3, placements=[("a", "b")]).check()


def test_a_map_breaking_a_rule_is_never_encoded():
    with pytest.raises(MapError):
        PartitionMap(epoch=0, replicas=3, placements=(SETTLED,)).to_bytes()


# --- bytes --------------------------------------------------------------------------------


def test_a_map_round_trips_through_its_bytes():
    m = example_map()
    assert PartitionMap.from_bytes(m.to_bytes()) == m


def test_equal_maps_are_equal_bytes():
    a = PartitionMap(epoch=2, replicas=2, placements=[Placement(owners=["b", "a"])])
    b = PartitionMap(epoch=2, replicas=2, placements=[Placement(owners=["a", "b"])])
    assert a.to_bytes() == b.to_bytes()


def test_the_bytes_are_plain_cbor_in_the_documented_shape():
    assert wire.decode_plain(example_map(7).to_bytes(), "test") == {
        "format": 1, "epoch": 7, "replicas": 3,
        "placements": [[["a", "b", "c"], ["d"], ["c"]], [["a", "b", "d"], [], []], [["b", "c", "d"], [], []]],
    }


@st.composite
def maps(draw):
    nodes = [f"n{i}" for i in range(draw(st.integers(1, 7)))]
    replicas = draw(st.integers(1, 5))
    aim = min(replicas, len(nodes))
    placements = []
    for _ in range(draw(st.integers(1, 12))):
        target = draw(st.permutations(nodes))[:aim]
        owners = set(draw(st.sets(st.sampled_from(target)))) if target else set()
        joining = set(target) - owners
        spare = [n for n in nodes if n not in target]
        leaving = set(draw(st.permutations(spare))[:len(joining)]) if owners else set()
        placements.append(Placement(owners=owners | leaving if owners else target,
                                    joining=joining if owners else (), leaving=leaving))
    return PartitionMap(epoch=draw(st.integers(1, 2**40)), replicas=replicas, placements=placements)


@RUNS
@given(m=maps())
def test_any_well_formed_map_round_trips(m):
    m.check()
    assert PartitionMap.from_bytes(m.to_bytes()) == m


def raw_map(**changes) -> bytes:
    fields = {"format": 1, "epoch": 3, "replicas": 3, "placements": [[["a", "b", "c"], [], []]]} | changes
    return cbor2.dumps(fields, canonical=True)


def test_unknown_keys_are_ignored():
    assert PartitionMap.from_bytes(raw_map(later="x")).epoch == 3


@pytest.mark.parametrize(("data", "says"), [
    (b"\xff\x00", "not valid CBOR"),
    (cbor2.dumps([1, 2]), "a list, not a map"),
    (raw_map() + b"\x00", "1 bytes after the value"),
    (raw_map(format=2), "format 2, this node reads format 1"),
    (raw_map(format=None), "format None"),
    (raw_map(epoch="3"), "epoch '3' is not an integer"),
    (raw_map(replicas=None), "replicas None is not an integer"),
    (raw_map(placements={"0": []}), "placements {'0': []} is not an array"),
    (raw_map(placements=[[["a"], []]]), "partition 0: [['a'], []] is not [owners, joining, leaving]"),
    (raw_map(placements=[[["a", 1], [], []]]), "is not [owners, joining, leaving]"),
    (raw_map(placements=[[["b", "a", "c"], [], []]]), "partition 0: owners ['b', 'a', 'c'] is not sorted"),
    (raw_map(placements=[[["a", "b"], ["b"], []]]), "'b' is both owner and joining"),
    (raw_map(epoch=0), "epoch 0"),
    (raw_map(placements=[[["n"] * 1000, [], []]]), "..."),
    (cbor2.dumps(cbor2.CBORTag(1, 5)), "not valid CBOR"),
])
def test_malformed_bytes_are_refused_in_one_line(data, says):
    with pytest.raises(MapError) as caught:
        PartitionMap.from_bytes(data)
    assert says in str(caught.value)
    assert str(caught.value).startswith("partition map")
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 200


@RUNS
@given(data=st.binary(max_size=200))
def test_any_bytes_give_a_map_or_a_map_error(data):
    try:
        PartitionMap.from_bytes(data)
    except MapError:
        pass

"""Ballots and the member numbers they are made of: unique, totally ordered, agreed by every node."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.consensus import MembershipChange

from keel_consensus_paxos.ballot import SPAN, ballot, describe, number_of, round_of
from keel_consensus_paxos.messages import Configuration, Prepare

from .harness import HEARTBEAT, PLAIN, Net

rounds = st.integers(min_value=0, max_value=10**9)
numbers = st.integers(min_value=1, max_value=SPAN - 1)


@given(a=st.tuples(rounds, numbers), b=st.tuples(rounds, numbers))
def test_ballots_order_by_round_then_member_number(a, b):
    """Paxos Made Simple §2.2: proposal numbers are totally ordered; keel orders (round, number) pairs, round first."""
    assert (ballot(*a) < ballot(*b)) == (a < b)
    assert (ballot(*a) == ballot(*b)) == (a == b)


@given(round_=rounds, number=numbers)
def test_a_ballot_gives_back_its_round_and_member_number(round_, number):
    """Paxos Made Simple §2.2: every proposer's numbers are its own, so the member number must survive the encoding."""
    value = ballot(round_, number)
    assert (round_of(value), number_of(value)) == (round_, number)


def test_a_higher_round_beats_any_member_number_of_a_lower_round():
    """Paxos Made Simple §2.2: a proposer that learns of round r outbids it with round r + 1, whoever ran r."""
    assert ballot(2, 1) > ballot(1, SPAN - 1)
    assert ballot(1, 2) > ballot(1, 1)


@pytest.mark.parametrize(("round_", "number", "shown"), [(7, 2, "7.2"), (0, 1, "0.1"), (12, 999, "12.999")])
def test_a_ballot_is_described_as_round_dot_number(round_, number, shown):
    """`keel status` shows ballots as operators read them: `round.number`."""
    assert describe(ballot(round_, number)) == shown


@pytest.mark.parametrize(("round_", "number"), [(1, 0), (1, SPAN), (1, -3), (-1, 1)])
def test_a_member_number_or_round_out_of_range_is_refused(round_, number):
    """Paxos Made Simple §2.2: two proposers may never share a ballot; a number outside 1..SPAN-1 would collide."""
    with pytest.raises(ValueError, match="paxos ballot"):
        ballot(round_, number)


def test_bootstrap_voters_are_numbered_one_to_n_in_sorted_order():
    """Every node must derive the same numbers from the same voter list, whatever order it was written in."""
    config = Configuration.bootstrap(("n3", "n1", "n2"))
    assert config.voters == ("n1", "n2", "n3")
    assert [config.number(node) for node in ("n1", "n2", "n3")] == [1, 2, 3]
    assert config.next_number == 4
    assert config.number("n4") is None


def test_a_changed_configuration_keeps_numbers_and_never_reuses_a_removed_members():
    """Paxos Made Simple §2.2: ballots stay unique only if no two members, ever, share a number.

    A removed member might still be running with ballots of its number; a
    node that joins later under the same number could issue equal ballots
    for different values.
    """
    config = Configuration.bootstrap(("a", "b", "c"))
    removed = config.changed(("a", "c"), ())
    assert [removed.number(n) for n in ("a", "b", "c")] == [1, None, 3]
    grown = removed.changed(("a", "c"), ("d",))
    assert [grown.number(n) for n in ("a", "c", "d")] == [1, 3, 4]
    back = grown.changed(("a", "c", "d"), ("b",))
    assert back.number("b") == 5, "a member removed and added again gets a fresh number"
    assert back.next_number == 6


def test_a_node_added_later_leads_with_ballots_of_the_next_member_number():
    """Paxos Made Simple §2.2: the numbers in the configuration are the ones a node builds its ballots from."""
    net = Net(("n1", "n2", "n3", "n4"), voters=("n1", "n2", "n3"), options=PLAIN)
    net.elect("n1")
    net.engine("n1").change_membership(MembershipChange("add_learner", "n4"))
    net.tick(HEARTBEAT)
    net.engine("n1").change_membership(MembershipChange("promote", "n4"))
    net.tick(HEARTBEAT)
    assert net.engine("n4").status().voters == ("n1", "n2", "n3", "n4")
    net.crash("n1")
    net.forget()
    net.elect("n4")
    prepares = [m for _, m in net.sent("n4", Prepare)]
    assert len(prepares) == 3 and {number_of(m.ballot) for m in prepares} == {4}
    assert number_of(net.ballot("n4")) == 4 and round_of(net.ballot("n4")) == 2

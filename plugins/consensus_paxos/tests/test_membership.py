"""One-node membership changes through the log: learners, promotion, removal, one change at a time."""

from __future__ import annotations

import pytest

from keel.consensus import MembershipChange
from keel.errors import KeelError

from keel_consensus_paxos import PaxosOptions
from keel_consensus_paxos.messages import Accept, Prepare, Takeover

from .harness import ELECTION_MAX, HEARTBEAT, Net

FOUR = ("n1", "n2", "n3", "n4")


def add(node: str) -> MembershipChange:
    return MembershipChange("add_learner", node)


def grown(options: PaxosOptions | None = None) -> Net:
    """n1 leads n1-n3; n4 runs but is no member yet."""
    net = Net(FOUR, voters=("n1", "n2", "n3"), options=options)
    net.elect("n1")
    net.tick(HEARTBEAT)
    return net


def test_a_learner_learns_every_chosen_slot_but_is_not_needed_for_a_quorum():
    """Paxos Made Simple §2.3: learners learn chosen values; only the voters' majority decides."""
    net = grown()
    net.engine("n1").change_membership(add("n4"))
    net.propose("n1", b"a=1")
    net.run(2 * HEARTBEAT)
    assert net.role("n4") == "learner"
    assert net.machines["n4"].commands() == [b"a=1"]
    net.cut |= {("n1", "n4"), ("n4", "n1")}
    net.crash("n3")
    net.propose("n1", b"b=2")
    net.run(2 * HEARTBEAT)
    assert net.machines["n1"].commands() == [b"a=1", b"b=2"]


def test_a_learner_never_runs_phase_1():
    """Only voters may propose; a learner that hears no leader waits."""
    net = grown()
    net.engine("n1").change_membership(add("n4"))
    net.run(2 * HEARTBEAT)
    net.forget()
    net.cut |= {("n1", "n4")}
    net.run(4 * ELECTION_MAX)
    assert net.sent("n4", Prepare) == []


def test_a_learner_is_promoted_only_once_caught_up():
    """A voter that lags far behind would slow every quorum it is needed for; promotion waits until it caught up."""
    net = grown(PaxosOptions(promote_lag=0))
    net.engine("n1").change_membership(add("n4"))
    net.run(2 * HEARTBEAT)
    net.cut |= {("n1", "n4")}
    net.propose("n1", b"a=1")
    net.run(2 * HEARTBEAT)
    with pytest.raises(KeelError, match="still behind"):
        net.engine("n1").change_membership(MembershipChange("promote", "n4"))
    net.cut.clear()
    net.propose("n1", b"b=2")
    net.run(2 * HEARTBEAT)
    net.engine("n1").change_membership(MembershipChange("promote", "n4"))
    net.run(2 * HEARTBEAT)
    assert net.engine("n4").status().voters == FOUR and net.role("n4") == "follower"


def test_a_second_change_waits_until_the_first_is_chosen():
    """One-node changes are safe only one at a time: any two majorities of consecutive configurations overlap."""
    net = grown()
    net.cut |= {("n1", "n2"), ("n1", "n3")}
    net.engine("n1").change_membership(add("n4"))
    with pytest.raises(KeelError, match="not chosen yet"):
        net.engine("n1").change_membership(MembershipChange("remove", "n3"))


def test_a_new_leader_changes_nothing_before_its_own_first_slot_is_chosen():
    """`membership` theory: until its no-op is chosen a new leader might still re-propose an older leader's change
    from the same base, and two changes from one base could pick disjoint majorities."""
    net = Net(FOUR, voters=("n1", "n2", "n3"))
    net.rewrite = lambda src, dst, msg: None if isinstance(msg, Accept) else msg
    net.elect("n1")
    with pytest.raises(KeelError, match="first slot"):
        net.engine("n1").change_membership(add("n4"))


def test_a_leader_whose_removal_is_chosen_steps_down_and_hands_over():
    """A removed node no longer counts in any quorum; it leaves leadership to a caught-up voter at once."""
    net = Net()
    net.elect("n1")
    net.tick(HEARTBEAT)
    net.engine("n1").change_membership(MembershipChange("remove", "n1"))
    net.run(2 * HEARTBEAT)
    assert [dst for dst, _ in net.sent("n1", Takeover)] == ["n2"]
    assert net.leaders() == ["n2"]
    assert net.engine("n2").status().voters == ("n2", "n3")
    net.propose("n2", b"a=1")
    net.run(2 * HEARTBEAT)
    assert net.machines["n3"].commands() == [b"a=1"]


@pytest.mark.parametrize(("change", "message"), [
    (MembershipChange("add_learner", "n2"), "already a member"),
    (MembershipChange("promote", "n9"), "not a learner"),
    (MembershipChange("remove", "n9"), "not a member"),
    (MembershipChange("demote", "n2"), "unknown action"),
])
def test_a_change_that_does_not_apply_is_refused(change, message):
    """A change is checked against the configuration in force before it takes a slot."""
    net = grown()
    with pytest.raises(KeelError, match=message):
        net.engine("n1").change_membership(change)


def test_a_cluster_whose_founders_all_left_elects_a_leader_after_a_full_restart():
    """Paxos has no up-to-date check, so a candidate needs a majority of every configuration it may have missed.
    The commit watermark in the stable state keeps a restarted node from missing those it knew chosen: after every
    founder left and the rest restarted, the founders' majority is no longer needed, and a leader emerges."""
    net = Net(ids=("a", "b", "c", "d", "e"), voters=("a", "b", "c"))
    net.elect("c")
    for action, node in [("add_learner", "d"), ("promote", "d"), ("remove", "a"), ("add_learner", "e"),
                         ("promote", "e"), ("remove", "b")]:
        net.engine("c").change_membership(MembershipChange(action, node))
        net.run(0.3)
    assert net.engine("c").status().voters == ("c", "d", "e")
    net.crash("a")
    net.crash("b")
    for node in ("c", "d", "e"):
        net.crash(node)
    for node in ("c", "d", "e"):
        net.start(node)
    net.run(5.0)
    assert len(net.leaders()) == 1 and net.leaders()[0] in ("c", "d", "e")

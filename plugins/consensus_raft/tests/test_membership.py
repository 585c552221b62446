"""One-server membership changes (thesis §4.1-§4.2)."""

from __future__ import annotations

import pytest

from keel.consensus import EntryKind, MembershipChange, RoleChanged, SnapshotMeta
from keel.errors import KeelError, NotLeader

from keel_consensus_raft import Configuration, RaftOptions
from keel_consensus_raft.messages import AppendEntries, RequestVote

from .harness import ELECTION_MAX, HEARTBEAT, Net

ADD_N4 = MembershipChange("add_learner", "n4")


def joining() -> Net:
    """n1 leads n1-n3; n4 runs but is outside the configuration."""
    net = Net(("n1", "n2", "n3", "n4"), voters=("n1", "n2", "n3"))
    net.elect("n1")
    net.run(HEARTBEAT)
    return net


def config(net: Net, node: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    status = net.engine(node).status()
    return status.voters, status.learners


def test_a_learner_receives_the_log_but_neither_votes_nor_counts():
    """Thesis §4.2.1: new servers join as non-voting members, so adding them cannot stall commits."""
    net = joining()
    index = net.engine("n1").change_membership(ADD_N4)
    net.run(HEARTBEAT)
    assert net.engine("n1").log.entry(index).kind is EntryKind.CONFIG
    assert config(net, "n4") == (("n1", "n2", "n3"), ("n4",))
    assert net.role("n4") == "learner"  # outside the voters from its first start, so never anything else
    assert {e.role for e in net.events("n4") if isinstance(e, RoleChanged)} == {"learner"}
    net.cut |= {("n1", "n2"), ("n1", "n3")}
    (entry,) = net.propose("n1", b"a=1")
    net.run(HEARTBEAT)
    assert net.engine("n4").log.last_index == entry
    assert net.engine("n1").status().commit_index < entry  # leader + learner are not a majority of voters
    assert all(dst != "n4" for dst, _ in net.sent("n1", RequestVote))  # nor is it asked for votes
    net.run(3 * ELECTION_MAX)
    assert not net.sent("n4", RequestVote)  # a learner never campaigns


def test_a_configuration_takes_effect_as_soon_as_it_is_appended():
    """Thesis §4.1: a server uses the latest configuration in its log, committed or not."""
    net = joining()
    net.cut |= {("n1", "n2"), ("n1", "n3")}
    net.engine("n1").change_membership(ADD_N4)
    net.settle()
    assert net.engine("n1").status().commit_index < net.engine("n1").log.last_index
    assert config(net, "n1") == (("n1", "n2", "n3"), ("n4",))
    assert any(dst == "n4" for dst, _ in net.sent("n1", AppendEntries))


def test_a_learner_is_promoted_only_once_it_caught_up():
    """Thesis §4.2.1: a new server becomes a voter only when its log is close to the leader's."""
    net = Net(("n1", "n2", "n3", "n4"), voters=("n1", "n2", "n3"), options=RaftOptions(promote_lag=2))
    net.elect("n1")
    net.propose("n1", *[b"x"] * 10)
    net.run(HEARTBEAT)
    net.cut.add(("n1", "n4"))
    net.engine("n1").change_membership(ADD_N4)
    net.run(HEARTBEAT)
    with pytest.raises(KeelError, match="still behind"):
        net.engine("n1").change_membership(MembershipChange("promote", "n4"))
    net.cut.clear()
    net.run(5 * HEARTBEAT)
    net.engine("n1").change_membership(MembershipChange("promote", "n4"))
    net.run(HEARTBEAT)
    assert all(config(net, node) == (("n1", "n2", "n3", "n4"), ()) for node in net.ids)
    assert net.role("n4") == "follower"


def test_only_one_change_may_be_in_progress():
    """Thesis §4.1: a leader starts a change only after the previous one committed."""
    net = joining()
    net.cut |= {("n1", "n2"), ("n1", "n3")}
    net.engine("n1").change_membership(ADD_N4)
    with pytest.raises(KeelError, match="not committed yet"):
        net.engine("n1").change_membership(MembershipChange("remove", "n3"))
    net.cut.clear()
    net.run(5 * HEARTBEAT)
    net.engine("n1").change_membership(MembershipChange("remove", "n3"))


def test_a_new_leader_changes_membership_only_after_committing_in_its_term():
    """Thesis §4.1 (corrected rule): a leader may not append a change until an entry of its term has committed."""
    net = joining()
    net.rewrite = lambda src, dst, msg: None if src == "n2" and isinstance(msg, AppendEntries) else msg
    net.elect("n2")
    with pytest.raises(KeelError, match="has not committed an entry"):
        net.engine("n2").change_membership(ADD_N4)
    net.rewrite = lambda src, dst, msg: msg
    net.run(5 * HEARTBEAT)
    net.engine("n2").change_membership(ADD_N4)


def test_a_removed_leader_steps_down_once_its_removal_commits():
    """Thesis §4.2.2: a leader removed from the configuration leads until that entry commits, then steps down."""
    net = joining()
    index = net.engine("n1").change_membership(MembershipChange("remove", "n1"))
    net.settle()
    assert config(net, "n2") == (("n2", "n3"), ())
    net.run(3 * HEARTBEAT)
    assert net.role("n1") in ("learner", "follower") and net.role("n1") != "leader"
    (leader,) = net.leaders()
    assert leader in ("n2", "n3")
    assert net.engine(leader).status().commit_index >= index
    net.run(3 * ELECTION_MAX)
    assert not [m for _, m in net.sent("n1", RequestVote) if m.term > net.engine(leader).status().term - 1]


def test_a_removed_configuration_entry_brings_back_the_one_before():
    """Thesis §4.1: when a CONFIG entry is truncated away, the server reverts to the previous configuration."""
    net = joining()
    net.cut |= {("n1", "n2"), ("n1", "n3"), ("n1", "n4")}
    net.engine("n1").change_membership(MembershipChange("remove", "n3"))
    net.settle()
    assert config(net, "n1") == (("n1", "n2"), ())
    net.crash("n1")
    net.cut.clear()
    net.elect("n2")
    net.run(HEARTBEAT)
    net.restart("n1")
    net.run(3 * HEARTBEAT)
    assert config(net, "n1") == (("n1", "n2", "n3"), ())
    assert net.engine("n1").log.truncations == 1


@pytest.mark.parametrize(("change", "message"), [
    (MembershipChange("add_learner", "n2"), "already a member"),
    (MembershipChange("promote", "n4"), "not a learner"),
    (MembershipChange("remove", "n9"), "not a member"),
    (MembershipChange("demote", "n2"), "unknown action"),
])
def test_a_change_that_does_not_apply_is_refused_in_one_line(change, message):
    """Engine contract: an invalid change raises KeelError and leaves the log alone."""
    net = joining()
    last = net.engine("n1").log.last_index
    with pytest.raises(KeelError, match=message):
        net.engine("n1").change_membership(change)
    assert net.engine("n1").log.last_index == last


def test_the_last_voter_cannot_be_removed():
    """Thesis §4: a cluster needs at least one voter to make progress."""
    net = Net(("solo",))
    net.elect("solo")
    net.run(HEARTBEAT)
    with pytest.raises(KeelError, match="last voter"):
        net.engine("solo").change_membership(MembershipChange("remove", "solo"))


def test_a_follower_refuses_membership_changes():
    """Engine contract: only the leader changes membership; others name it."""
    net = joining()
    with pytest.raises(NotLeader) as refused:
        net.engine("n2").change_membership(ADD_N4)
    assert refused.value.leader_hint == "n1"


def test_configurations_survive_in_the_snapshot():
    """Raft §7 and thesis §4: a snapshot records the configuration as of its index, so compaction keeps membership."""
    net = joining()
    net.engine("n1").change_membership(ADD_N4)
    net.run(HEARTBEAT)
    applied = net.machines["n1"].index
    net.engine("n1").snapshot_taken(SnapshotMeta(index=applied, term=1), b"s")
    net.settle()
    net.restart("n1")
    net.engine("n1").snapshot_taken(net.engine("n1").log.snapshot, b"s")
    assert config(net, "n1") == (("n1", "n2", "n3"), ("n4",))
    assert net.engine("n1").log.snapshot.config == Configuration(voters=("n1", "n2", "n3"), learners=("n4",)).encode()

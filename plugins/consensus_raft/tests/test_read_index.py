"""ReadIndex read barriers (thesis §6.4)."""

from __future__ import annotations

import pytest

from keel.consensus import ReadReady
from keel.errors import NotLeader

from keel_consensus_raft.messages import AppendEntries, Heartbeat

from .harness import ELECTION_MAX, HEARTBEAT, Net


def reads(net: Net, node: str) -> list[ReadReady]:
    return [read for ready in net.readies[node] for read in ready.reads]


def test_a_read_is_released_only_after_a_majority_confirms_leadership():
    """Thesis §6.4: the leader records its commit index, then a heartbeat round to a majority proves it still leads."""
    net = Net()
    net.elect("n1")
    net.propose("n1", b"a=1")
    net.settle()
    commit = net.engine("n1").status().commit_index
    net.hold = True
    net.forget()
    net.engine("n1").read_barrier(7)
    net.settle()
    assert reads(net, "n1") == []
    beats = [m for dst, m in net.sent("n1", Heartbeat)]
    assert len(beats) == 2 and len({m.beat for m in beats}) == 1
    net.hold = False
    net.settle()
    assert reads(net, "n1") == [ReadReady(7, commit)]


def test_a_new_leader_holds_reads_until_an_entry_of_its_term_commits():
    """Thesis §6.4: a leader that has not committed in its term may not know the latest commit index, so it waits."""
    net = Net()
    net.elect("n1")
    net.propose("n1", b"a=1")
    net.settle()
    net.rewrite = lambda src, dst, msg: None if src == "n2" and isinstance(msg, AppendEntries) else msg
    net.elect("n2")
    noop = net.engine("n2").log.last_index
    net.forget()
    net.engine("n2").read_barrier(9)
    net.settle()
    assert net.engine("n2").status().commit_index < noop
    assert reads(net, "n2") == [] and net.sent("n2", Heartbeat) == []
    net.rewrite = lambda src, dst, msg: msg
    net.run(2 * HEARTBEAT)
    assert reads(net, "n2") == [ReadReady(9, noop)]


def test_reads_that_arrive_together_share_one_heartbeat_round():
    """Thesis §6.4 (batching): reads waiting for a round are confirmed together by the next one."""
    net = Net()
    net.elect("n1")
    net.hold = True
    net.forget()
    for request in range(5):
        net.engine("n1").read_barrier(request)
    net.settle()
    assert len(net.sent("n1", Heartbeat)) == 2  # one round: one heartbeat to each follower
    net.hold = False
    net.settle()
    assert [read.request for read in reads(net, "n1")] == [0, 1, 2, 3, 4]


def test_a_leader_cut_off_from_its_majority_never_answers_a_read():
    """Thesis §6.4: a deposed or isolated leader cannot gather a majority for the round, so it serves no stale read."""
    net = Net()
    net.elect("n1")
    net.cut |= {("n1", "n2"), ("n1", "n3"), ("n2", "n1"), ("n3", "n1")}
    net.forget()
    net.engine("n1").read_barrier(1)
    net.run(2 * ELECTION_MAX + HEARTBEAT)
    assert reads(net, "n1") == []
    assert net.role("n1") == "follower"  # and CheckQuorum made it step down meanwhile
    assert len(net.leaders()) == 1


def test_a_follower_refuses_a_read_barrier_and_names_the_leader():
    """Raft §8: clients find the leader through followers' hints."""
    net = Net()
    net.elect("n3")
    with pytest.raises(NotLeader) as refused:
        net.engine("n1").read_barrier(1)
    assert refused.value.leader_hint == "n3"


def test_a_single_voter_answers_a_read_without_waiting_for_anyone():
    """Thesis §6.4: a majority of one is the leader itself."""
    net = Net(("solo",))
    net.elect("solo")
    net.run(HEARTBEAT)
    net.forget()
    net.engine("solo").read_barrier(3)
    net.settle()
    assert reads(net, "solo") == [ReadReady(3, 1)]

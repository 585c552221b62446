"""Leadership transfer (thesis §3.10)."""

from __future__ import annotations

import pytest

from keel.errors import KeelError, NotLeader

from keel_consensus_raft.messages import AppendEntries, RequestVote, TimeoutNow

from .harness import ELECTION_MAX, HEARTBEAT, Net


def test_leadership_moves_to_a_caught_up_target_in_the_next_term():
    """Thesis §3.10: the leader sends TimeoutNow to an up-to-date target, which wins an election at once."""
    net = Net()
    net.elect("n1")
    net.propose("n1", b"a=1")
    net.settle()
    term = net.engine("n1").status().term
    net.engine("n1").transfer_leadership("n3")
    net.settle()
    assert ("n3", TimeoutNow(term)) in net.sent("n1", TimeoutNow)
    assert net.leaders() == ["n3"]
    assert net.engine("n3").status().term == term + 1
    requests = [m for _, m in net.sent("n3", RequestVote)]
    assert requests and all(m.transfer and not m.pre_vote for m in requests)


def test_without_a_target_leadership_goes_to_the_most_caught_up_voter():
    """Thesis §3.10: the leader picks a voter whose log is as complete as its own."""
    net = Net()
    net.elect("n1")
    net.cut.add(("n1", "n2"))
    net.propose("n1", b"a=1")
    net.settle()
    net.engine("n1").transfer_leadership()
    net.settle()
    assert net.leaders() == ["n3"]


def test_the_leader_refuses_proposals_while_it_hands_over():
    """Thesis §3.10: during a transfer the leader stops accepting client requests, pointing clients at the target."""
    net = Net()
    net.elect("n1")
    net.cut.add(("n1", "n2"))
    net.propose("n1", b"a=1")
    net.settle()
    net.engine("n1").transfer_leadership("n2")  # n2 lags, so the transfer waits for it
    with pytest.raises(NotLeader) as refused:
        net.engine("n1").propose(b"b=2")
    assert refused.value.leader_hint == "n2"


def test_a_lagging_target_is_caught_up_before_it_is_told_to_campaign():
    """Thesis §3.10: the leader first brings the target's log up to date, then sends TimeoutNow."""
    net = Net()
    net.elect("n1")
    net.cut.add(("n1", "n2"))
    net.propose("n1", b"a=1", b"b=2")
    net.settle()
    net.engine("n1").transfer_leadership("n2")
    net.settle()
    assert net.sent("n1", TimeoutNow) == [] and net.leaders() == ["n1"]
    net.cut.clear()
    net.run(5 * HEARTBEAT)  # the pipeline into the cut stalls; the leader probes again within three heartbeats
    assert net.leaders() == ["n2"]
    assert net.engine("n2").log.last_index >= 3


def test_a_transfer_that_does_not_finish_within_an_election_timeout_is_abandoned():
    """Thesis §3.10: the leader aborts a transfer after an election timeout and accepts proposals again."""
    net = Net()
    net.elect("n1")
    net.cut |= {("n1", "n2"), ("n2", "n1")}
    net.propose("n1", b"a=1")
    net.settle()
    net.engine("n1").transfer_leadership("n2")
    with pytest.raises(NotLeader):
        net.engine("n1").propose(b"b=2")
    net.run(ELECTION_MAX + 2 * HEARTBEAT)
    assert net.leaders() == ["n1"]
    assert net.engine("n1").propose(b"b=2") > 0


def test_voters_set_leader_stickiness_aside_for_a_transfer():
    """Thesis §3.10 and §4.2.3: vote requests flagged as a transfer are answered even by followers that hear the leader."""
    net = Net()
    net.elect("n1")
    net.tick(HEARTBEAT)
    net.forget()
    term = net.engine("n2").status().term
    net.engine("n2").receive("n3", RequestVote(term=term + 1, last_index=9, last_term=term, transfer=True))
    (reply,) = [out.message for out in net.poll("n2").send]
    assert reply.granted and reply.term == term + 1


def test_only_another_voter_can_be_a_target():
    """Thesis §3.10: leadership can only go to a voting member."""
    net = Net()
    net.elect("n1")
    with pytest.raises(KeelError, match="not another voter"):
        net.engine("n1").transfer_leadership("n9")
    with pytest.raises(NotLeader):
        net.engine("n2").transfer_leadership("n3")


def test_a_target_still_replicating_keeps_receiving_entries():
    """Thesis §3.10: the leader keeps replicating to the target during a transfer."""
    net = Net()
    net.elect("n1")
    net.cut.add(("n1", "n2"))
    net.propose("n1", b"a=1")
    net.settle()
    net.engine("n1").transfer_leadership("n2")
    net.cut.clear()
    net.forget()
    net.run(5 * HEARTBEAT)
    assert any(dst == "n2" and m.entries for dst, m in net.sent("n1", AppendEntries))

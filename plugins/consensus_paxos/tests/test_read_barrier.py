"""Read barriers: a read is answered only once a quorum confirmed, after it was asked, that this ballot still leads."""

from __future__ import annotations

import pytest

from keel.consensus import ReadReady, RoleChanged
from keel.errors import NotLeader

from keel_consensus_paxos.messages import Accept, Heartbeat, HeartbeatReply, Prepare, Takeover

from .harness import ELECTION_MAX, HEARTBEAT, Net


def test_a_read_waits_for_a_quorum_to_acknowledge_a_heartbeat_round_started_after_it():
    """Linearizable reads without leases: answers to a round sent before the read prove nothing about the moment of
    the read (a higher ballot may have been promised in between); only a later round does."""
    net = Net()
    net.elect("n1")
    net.propose("n1", b"a=1")
    net.tick(HEARTBEAT)
    commit = net.engine("n1").status().commit_index
    net.hold = True
    net.forget()
    net.tick(HEARTBEAT, ["n1"])
    (before,) = {m.beat for _, m in net.sent("n1", Heartbeat)}
    net.deliver(lambda src, dst, m: isinstance(m, Heartbeat))  # the followers answer the round; answers held
    net.engine("n1").read_barrier(7)
    net.poll("n1")
    rounds = {m.beat for _, m in net.sent("n1", Heartbeat)}
    assert rounds == {before, before + 1}, "the read starts a new round at once"
    assert net.deliver(lambda src, dst, m: isinstance(m, HeartbeatReply) and m.beat == before) == 2
    assert net.reads("n1") == []
    net.hold = False
    net.settle()
    assert net.reads("n1") == [ReadReady(7, commit)]


def test_a_new_leader_answers_no_read_before_its_noop_slot_is_chosen():
    """Paxos Made Simple §3: until its own first slot is chosen a new leader may not know every chosen slot, so a
    read's index is at least that no-op's, even when a quorum confirms the ballot."""
    net = Net()
    net.elect("n1")
    net.propose("n1", b"a=1")
    net.tick(HEARTBEAT)
    net.rewrite = lambda src, dst, msg: None if src == "n2" and isinstance(msg, Accept) else msg
    net.engine("n1").transfer_leadership("n2")
    net.settle()
    assert net.leaders() == ["n2"]
    noop = net.engine("n2").log.last_index
    net.forget()
    net.engine("n2").read_barrier(9)
    net.run(HEARTBEAT)
    confirmations = [m for node in ("n1", "n3") for _, m in net.sent(node, HeartbeatReply)]
    assert confirmations and all(m.ok for m in confirmations)
    assert net.engine("n2").status().commit_index < noop
    assert net.reads("n2") == []
    net.rewrite = lambda src, dst, msg: msg
    net.run(4 * HEARTBEAT)  # the stalled Accepts are sent again
    assert net.engine("n2").status().commit_index >= noop
    assert net.reads("n2") == [ReadReady(9, noop)]


def test_a_leader_whose_ballot_a_quorum_outbid_answers_no_read():
    """Paxos Made Simple §2.2: once a quorum promised a higher ballot, this leader may have been superseded; the read's
    round meets refusals, the leader steps down, and the read is never answered."""
    net = Net()
    net.elect("n1")
    net.tick(HEARTBEAT)
    net.hold = True
    net.engine("n1").transfer_leadership("n2")
    net.poll("n1")
    assert net.deliver(lambda src, dst, m: isinstance(m, Takeover)) == 1
    assert net.deliver(lambda src, dst, m: isinstance(m, Prepare) and dst == "n3") == 1  # n2 and n3: a quorum
    net.queue.clear()  # n1 never hears of the new ballot but from the answers to its read's round
    net.forget()
    net.engine("n1").read_barrier(5)
    net.poll("n1")
    net.deliver(lambda src, dst, m: isinstance(m, Heartbeat))
    net.deliver(lambda src, dst, m: isinstance(m, HeartbeatReply))
    assert net.reads("n1") == []
    assert net.role("n1") == "follower"


def test_reads_that_arrive_together_share_one_heartbeat_round():
    """Batching: reads waiting for a round are confirmed together by the next one."""
    net = Net()
    net.elect("n1")
    net.hold = True
    net.forget()
    for request in range(5):
        net.engine("n1").read_barrier(request)
    net.poll("n1")
    assert len(net.sent("n1", Heartbeat)) == 2  # one round: one heartbeat to each follower
    net.hold = False
    net.settle()
    assert [read.request for read in net.reads("n1")] == [0, 1, 2, 3, 4]


def test_a_leader_cut_off_from_its_quorum_never_answers_a_read_and_steps_down():
    """Check-quorum: an isolated leader cannot gather a quorum for the round, and gives up leading after the maximum
    failure-detection timeout."""
    net = Net()
    net.elect("n1")
    leading = net.ballot("n1")
    net.cut |= {("n1", "n2"), ("n1", "n3"), ("n2", "n1"), ("n3", "n1")}
    net.forget()
    net.engine("n1").read_barrier(1)
    net.run(2 * ELECTION_MAX + HEARTBEAT)
    assert net.reads("n1") == []
    assert net.role("n1") != "leader"
    assert RoleChanged("follower", leading) in net.events("n1")


def test_a_follower_refuses_a_read_barrier_and_names_the_leader():
    """Clients find the leader through followers' hints."""
    net = Net()
    net.elect("n3")
    with pytest.raises(NotLeader) as refused:
        net.engine("n1").read_barrier(1)
    assert refused.value.leader_hint == "n3"


def test_a_single_voter_answers_a_read_without_waiting_for_anyone():
    """A quorum of one is the leader itself."""
    net = Net(("solo",))
    net.elect("solo")
    net.forget()
    net.engine("solo").read_barrier(3)
    net.settle()
    assert net.reads("solo") == [ReadReady(3, 1)]

"""Elections: timeouts, votes, PreVote, leader stickiness and CheckQuorum."""

from __future__ import annotations

import pytest

from keel import wire
from keel.consensus import EngineSettings, Entry, EntryKind, LeaderChanged, Recovered, RoleChanged, SaveStable

from keel_consensus_raft import RaftOptions, create
from keel_consensus_raft.messages import HardState, RequestVote, VoteReply

from .harness import ELECTION_MAX, ELECTION_MIN, HEARTBEAT, Net

NO_PREVOTE = RaftOptions(pre_vote=False)


def stable(op: SaveStable) -> HardState:
    return wire.decode(op.state)


def test_election_timeouts_are_randomized_within_the_configured_range(seed):
    """Raft §5.2: each server draws its election timeout at random from a fixed interval, so split votes are rare."""
    import random

    starts = []
    for node in ("a", "b", "c", "d", "e", "f"):
        engine = create(EngineSettings(node_id=node, voters=("a", "b", "c", "d", "e", "f")), Recovered(),
                        random.Random(f"{seed}/{node}"))
        engine.poll()
        engine.tick(10.0)
        t = 10.0
        while engine.status().role == "follower":
            t += 0.001
            engine.tick(t)
        starts.append(round(t - 10.0, 3))
    assert all(ELECTION_MIN <= start <= ELECTION_MAX + 0.001 for start in starts)
    assert len(set(starts)) > 1


def test_candidate_persists_its_new_term_and_vote_before_asking_for_votes():
    """Raft §5.1, figure 2: currentTerm and votedFor are persisted before a server answers or sends an RPC."""
    net = Net(options=NO_PREVOTE)
    net.hold = True
    net.tick(0.0)
    net.now += ELECTION_MAX
    net.engine("n1").tick(net.now)
    ready = net.poll("n1")
    requests = [out.message for out in ready.send if isinstance(out.message, RequestVote)]
    assert len(requests) == 2 and all(r.term == 1 and not r.pre_vote for r in requests)
    saves = [op for op in ready.persist if isinstance(op, SaveStable)]
    assert [stable(op) for op in saves] == [HardState(term=1, vote="n1")]


def test_a_granted_vote_is_persisted_in_the_same_ready_as_the_reply():
    """Raft §5.2, figure 2: a vote is durable before the candidate can learn of it, so a restart never votes twice."""
    net = Net(options=NO_PREVOTE)
    net.tick(0.0)
    net.engine("n2").receive("n1", RequestVote(term=1, last_index=0, last_term=0))
    ready = net.poll("n2")
    assert [out.message for out in ready.send] == [VoteReply(term=1, granted=True)]
    assert [stable(op) for op in ready.persist] == [HardState(term=1, vote="n1")]


def test_a_voter_grants_at_most_one_vote_per_term_even_across_a_restart():
    """Raft §5.2: each server votes for at most one candidate in a term, first come first served."""
    net = Net(options=NO_PREVOTE)
    net.tick(0.0)
    net.engine("n3").receive("n1", RequestVote(term=1, last_index=0, last_term=0))
    net.poll("n3")
    net.restart("n3")
    net.engine("n3").receive("n2", RequestVote(term=1, last_index=0, last_term=0))
    assert [out.message for out in net.poll("n3").send] == [VoteReply(term=1, granted=False)]
    net.engine("n3").receive("n1", RequestVote(term=1, last_index=0, last_term=0))
    assert [out.message for out in net.poll("n3").send] == [VoteReply(term=1, granted=True)]


@pytest.mark.parametrize(("last_index", "last_term", "granted"), [
    (2, 1, False),  # same last term, shorter log
    (5, 1, False),  # longer log, but an older last term
    (3, 2, True),  # same log
    (1, 3, True),  # shorter log with a newer last term
])
def test_votes_go_only_to_candidates_whose_log_is_at_least_as_up_to_date(last_index, last_term, granted):
    """Raft §5.4.1: a voter denies its vote if its own log is more up to date (last term first, then length)."""
    entries = (Entry(1, 1, EntryKind.COMMAND), Entry(2, 2, EntryKind.COMMAND), Entry(3, 2, EntryKind.COMMAND))
    engine = create(EngineSettings(node_id="v", voters=("c", "v", "w"), options=NO_PREVOTE),
                    Recovered(entries=entries), __import__("random").Random(0))
    engine.poll()
    engine.receive("c", RequestVote(term=5, last_index=last_index, last_term=last_term))
    replies = [out.message for out in engine.poll().send]
    assert replies == [VoteReply(term=5, granted=granted)]


def test_a_candidate_steps_down_when_it_sees_a_higher_term():
    """Raft §5.1: a server that sees a higher term adopts it and becomes a follower."""
    net = Net(options=NO_PREVOTE)
    net.hold = True
    net.tick(0.0)
    net.now += ELECTION_MAX
    net.engine("n1").tick(net.now)
    net.poll("n1")
    assert net.role("n1") == "candidate"
    net.engine("n1").receive("n2", VoteReply(term=7, granted=False))
    ready = net.poll("n1")
    assert net.engine("n1").status().term == 7
    assert net.role("n1") == "follower"
    assert RoleChanged("follower", 7) in ready.events


def test_the_first_candidate_to_time_out_wins_and_everyone_learns_the_leader(seed):
    """Raft §5.2: a candidate with votes from a majority becomes leader and tells the others by heartbeats."""
    net = Net(("n1", "n2", "n3", "n4", "n5"), seed=seed)
    net.run(1.0)
    (leader,) = net.leaders()
    term = net.engine(leader).status().term
    for node in net.ids:
        assert net.engine(node).status().leader == leader
        assert LeaderChanged(leader, term) in net.events(node)


def test_prevote_keeps_an_isolated_node_from_raising_its_term():
    """Thesis §9.6: with PreVote a server raises its term only once a majority would vote for it."""
    net = Net()
    net.elect("n1")
    term = net.engine("n1").status().term
    net.cut |= {("n3", "n1"), ("n3", "n2"), ("n1", "n3"), ("n2", "n3")}
    net.run(3.0)
    assert net.engine("n3").status().term == term
    assert net.role("n3") == "pre-candidate"


def test_a_rejoining_node_does_not_depose_a_healthy_leader():
    """Thesis §9.6 and §4.2.3: a server cut off and reconnected leaves a leader that kept its quorum in place."""
    net = Net()
    net.elect("n1")
    term = net.engine("n1").status().term
    net.cut |= {("n3", "n1"), ("n3", "n2"), ("n1", "n3"), ("n2", "n3")}
    net.run(2.0)
    net.cut.clear()
    net.run(1.0)
    assert net.leaders() == ["n1"]
    assert {net.engine(node).status().term for node in net.ids} == {term}
    assert net.engine("n3").status().leader == "n1"


def test_without_prevote_a_rejoining_node_forces_a_new_term():
    """Raft §5.1 without thesis §9.6: the cut-off node's inflated term makes the healthy leader step down."""
    net = Net(options=RaftOptions(pre_vote=False, check_quorum=False))
    net.elect("n1")
    net.cut |= {("n3", "n1"), ("n3", "n2"), ("n1", "n3"), ("n2", "n3")}
    net.run(2.0)
    assert net.engine("n3").status().term > 1
    net.cut.clear()
    net.run(1.0)
    assert min(net.engine(node).status().term for node in net.ids) > 1


def test_followers_that_hear_a_leader_ignore_vote_requests_of_a_higher_term():
    """Thesis §4.2.3: within the minimum election timeout of hearing a leader, a server neither votes nor adopts the term."""
    net = Net()
    net.elect("n1")
    net.tick(HEARTBEAT)
    net.forget()
    net.engine("n2").receive("n3", RequestVote(term=9, last_index=99, last_term=9))
    ready = net.poll("n2")
    assert ready.send == () and ready.persist == ()
    assert net.engine("n2").status().term == 1


def test_a_leader_that_lost_its_quorum_steps_down():
    """Thesis §6.2 (CheckQuorum): a leader that hears from no majority for an election timeout becomes a follower."""
    net = Net()
    net.elect("n1")
    net.cut |= {("n2", "n1"), ("n3", "n1")}
    net.run(2 * ELECTION_MAX + HEARTBEAT)
    assert net.role("n1") == "follower"
    assert RoleChanged("follower", net.engine("n1").status().term) in net.events("n1")


def test_without_check_quorum_a_leader_without_a_quorum_stays_leader():
    """Raft §5 without thesis §6.2: nothing makes a partitioned leader step down until it sees a higher term."""
    net = Net(options=RaftOptions(check_quorum=False))
    net.elect("n1")
    net.cut |= {("n2", "n1"), ("n3", "n1"), ("n1", "n2"), ("n1", "n3")}
    net.run(2.0)
    assert net.role("n1") == "leader"


def test_a_single_voter_elects_itself():
    """Raft §5.2: a majority of one is the candidate itself."""
    net = Net(("solo",))
    net.elect("solo")
    net.run(0.1)
    assert net.engine("solo").status().commit_index == 1  # its NOOP, committed once durable

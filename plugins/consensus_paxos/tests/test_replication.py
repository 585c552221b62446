"""Phase 2 at the leader: pipelined, batched Accepts, what is chosen, and catching members up."""

from __future__ import annotations

import pytest

from keel.consensus import Append, MembershipChange, SaveStable
from keel.errors import Unavailable

from keel_consensus_paxos.messages import Accept, Accepted, Prepare
from keel_consensus_paxos.replication import UNCHOSEN_BYTES

from .harness import CAMPAIGN, HEARTBEAT, STEP, Net, messages


def test_a_leaders_accepts_leave_before_its_own_write_but_its_own_acceptance_after():
    """Engine contract (send_early): the leader may write its log while the Accepts travel; it counts its own
    acceptance only once durable, through the note to itself that waits in `send`."""
    net = Net()
    net.elect("n1")
    net.forget()
    net.propose("n1", b"k=v")
    ready = net.poll("n1")
    assert any(isinstance(op, Append) for op in ready.persist)
    assert sorted(dst for dst, _ in messages(ready, Accept, early=True)) == ["n2", "n3"]
    assert messages(ready, Accepted, early=False) == [("n1", Accepted(ballot=net.ballot("n1"), ok=True, match=2))]


def test_a_slot_is_chosen_once_a_quorum_of_durable_acceptances_is_counted():
    """Paxos Made Simple §2.2: a value is chosen when a majority of acceptors accepted it; the leader's own
    acceptance counts only once its write is durable."""
    net = Net()
    net.elect("n1")
    net.tick(HEARTBEAT)
    net.hold = True
    (slot,) = net.propose("n1", b"k=v")
    net.poll("n1")
    net.deliver(lambda src, dst, m: isinstance(m, Accept) and dst == "n2")
    net.deliver(lambda src, dst, m: isinstance(m, Accepted) and src == "n2")
    assert net.engine("n1").status().commit_index == slot - 1, "n2 alone is no majority before n1's write is durable"
    net.deliver(lambda src, dst, m: isinstance(m, Accepted) and src == "n1")
    assert net.engine("n1").status().commit_index == slot
    assert net.machines["n1"].commands() == [b"k=v"]


def test_proposals_between_two_polls_travel_as_one_append_and_one_accept_per_member():
    """Group commit: a burst of proposals costs one fsync and one Accept per member."""
    net = Net()
    net.elect("n1")
    net.forget()
    slots = net.propose("n1", *[f"k{i}=v".encode() for i in range(5)])
    ready = net.poll("n1")
    appends = [op for op in ready.persist if isinstance(op, Append)]
    assert [[e.index for e in op.entries] for op in appends] == [slots]
    accepts = messages(ready, Accept)
    assert len(accepts) == 2 and all([e.index for e in m.entries] == slots for _, m in accepts)


def test_a_member_gets_at_most_max_inflight_accepts_unanswered():
    """Flow control: with `max_inflight` Accepts in flight the leader waits for answers before sending more."""
    net = Net(max_inflight=2, max_batch_entries=1)
    net.elect("n1")
    net.settle()
    net.hold = True
    net.forget()
    net.propose("n1", *[f"k{i}=v".encode() for i in range(5)])
    net.poll("n1")
    assert len([1 for dst, _ in net.sent("n1", Accept) if dst == "n2"]) == 2
    net.hold = False
    net.settle()
    assert net.engine("n2").log.last_index == 6


def test_followers_learn_the_commit_index_and_apply_each_slot_once_in_order():
    """Paxos Made Simple §3 and the engine contract: chosen values reach every state machine in slot order, once."""
    net = Net(("n1", "n2", "n3", "n4", "n5"))
    net.elect("n1")
    for batch in range(4):
        net.propose("n1", *[f"k{batch}{i}=v".encode() for i in range(6)])
        net.tick(HEARTBEAT)
    net.run(HEARTBEAT)
    expected = [f"k{b}{i}=v".encode() for b in range(4) for i in range(6)]
    for node in net.ids:
        assert [e.index for e in net.machines[node].applied] == list(range(1, 26))
        assert net.machines[node].commands() == expected


def test_a_lost_accept_is_sent_again():
    """Liveness under loss: a member that leaves Accepts unanswered for two heartbeats is sent them again."""
    net = Net()
    net.elect("n1")
    lost = []

    def lose_first(src, dst, msg):
        if dst == "n2" and isinstance(msg, Accept) and msg.entries and not lost:
            lost.append(msg)
            return None
        return msg

    net.rewrite = lose_first
    net.propose("n1", b"a=1")
    net.settle()
    assert lost and net.engine("n2").log.last_index == 1
    net.run(4 * HEARTBEAT)
    assert net.slots("n2") == net.slots("n1")
    assert net.machines["n2"].commands() == [b"a=1"]


def test_a_follower_behind_asks_for_the_slots_it_lacks_and_gets_them():
    """keel logs are contiguous: a follower that missed slots answers the next Accept with `need`, and the leader
    sends again from there."""
    net = Net()
    net.elect("n1")
    net.cut |= {("n1", "n3")}
    net.propose("n1", b"a=1", b"b=2")
    net.tick(HEARTBEAT)
    net.cut.clear()
    net.forget()
    net.propose("n1", b"c=3")
    net.run(2 * HEARTBEAT)
    assert [m.need for _, m in net.sent("n3", Accepted) if not m.ok][:1] == [2]
    assert net.machines["n3"].commands() == [b"a=1", b"b=2", b"c=3"]


def test_a_restarted_follower_catches_up_without_waiting_for_new_proposals():
    """Engine theory ("what it learned beyond [the snapshot] is learned again from the leader") and replica
    convergence: a follower that restarts while the cluster is idle holds every chosen value on disk, and must
    learn that they are chosen and apply them, without a client having to write first."""
    net = Net()
    net.elect("n1")
    net.propose("n1", b"a=1", b"b=2")
    net.run(2 * HEARTBEAT)
    assert net.machines["n3"].commands() == [b"a=1", b"b=2"]
    net.crash("n3")
    net.start("n3")
    net.run(10 * HEARTBEAT)
    assert net.engine("n3").status().commit_index == net.engine("n1").status().commit_index
    assert net.machines["n3"].commands() == [b"a=1", b"b=2"]


def test_a_follower_that_probed_and_returns_to_the_same_leader_learns_the_commit_it_missed():
    """Paxos Made Simple §3 (learning chosen values) and replica convergence: n2 accepted slots 2-3 but missed the
    heartbeats that carry their commit, probed in vain, and hears the same leader again; it still holds that
    leader's values there, so it must learn they are chosen without a client having to write first."""
    net = Net()
    net.elect("n1")
    net.propose("n1", b"a=1", b"b=2")
    net.settle()
    assert net.engine("n2").log.last_index == 3 and net.engine("n2").status().commit_index < 3
    net.cut |= {("n1", "n2")}
    net.rewrite = lambda src, dst, msg: None if src == "n2" and isinstance(msg, Prepare) else msg  # no refusals
    for _ in range(round(CAMPAIGN / STEP)):
        net.tick(STEP)
        if net.role("n2") == "candidate":
            break
    assert net.role("n2") == "candidate"
    net.cut.clear()
    net.run(10 * HEARTBEAT)
    assert net.engine("n2").status().leader == "n1" and net.ballot("n2") == net.ballot("n1")
    assert net.engine("n2").status().commit_index == net.engine("n1").status().commit_index == 3
    assert net.machines["n2"].commands() == [b"a=1", b"b=2"]


def test_the_leader_refuses_proposals_while_too_many_bytes_await_a_quorum():
    """Back-pressure: unchosen slots are bounded in bytes, so a new leader's phase 1 can always recover them in one
    Promise; past the bound the client is told to retry."""
    net = Net()
    net.elect("n1")
    net.cut |= {("n1", "n2"), ("n1", "n3")}
    big = b"x" * (UNCHOSEN_BYTES // 4)
    net.propose("n1", big, big, big, big)
    with pytest.raises(Unavailable, match="retry"):
        net.engine("n1").propose(b"one more")
    net.cut.clear()
    net.run(4 * HEARTBEAT)
    net.propose("n1", b"one more")


def test_a_lone_voter_that_wins_at_once_sends_its_accepts_only_after_its_ballot_is_durable():
    """Paxos Made Simple §2.3: a proposer must never use one ballot for two values. A lone voter promises its
    own ballot and leads in one step; its Accepts in that Ready wait for the promise's fsync (`send`, not
    `send_early`), or a crash before it would let the node lead again under the same ballot with other values."""
    net = Net(ids=("n1", "n2"), voters=("n1",))
    net.elect("n1")
    net.engine("n1").change_membership(MembershipChange("add_learner", "n2"))
    net.run(0.5)
    net.crash("n1")
    engine = net.start("n1")
    engine.tick(net.clock("n1"))
    net.ahead["n1"] += CAMPAIGN
    engine.tick(net.clock("n1"))
    engine.propose(b"v")
    ready = engine.poll()
    assert any(isinstance(op, SaveStable) for op in ready.persist)
    assert [o.dst for o in ready.send_early if isinstance(o.message, Accept)] == []
    assert [o.dst for o in ready.send if isinstance(o.message, Accept)] == ["n2"]

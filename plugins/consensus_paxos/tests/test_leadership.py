"""Leadership: stepping down when outbid, check-quorum, and handing over."""

from __future__ import annotations

import pytest

from keel.consensus import RoleChanged
from keel.errors import KeelError, NotLeader

from keel_consensus_paxos.ballot import ballot, number_of, round_of
from keel_consensus_paxos.messages import Accepted, HeartbeatReply, Prepare, Promise

from .harness import HEARTBEAT, Net, messages

OUTBID = ballot(3, 2)


@pytest.mark.parametrize("reply", [
    Accepted(ballot=ballot(1, 1), ok=False, promised=OUTBID),
    HeartbeatReply(ballot=ballot(1, 1), beat=0, ok=False, promised=OUTBID),
])
def test_a_leader_steps_down_when_an_acceptor_names_a_higher_promised_ballot(reply):
    """Paxos Made Simple §2.2/§2.5: an acceptor that promised a higher ballot accepts nothing of this leader again;
    the leader learns it from the refusal, stops leading and refuses proposals."""
    net = Net()
    net.elect("n1")
    assert net.ballot("n1") == ballot(1, 1)
    net.forget()
    net.engine("n1").receive("n2", reply)
    net.poll("n1")
    assert net.role("n1") == "follower"
    assert RoleChanged("follower", ballot(1, 1)) in net.events("n1")
    with pytest.raises(NotLeader):
        net.engine("n1").propose(b"late")


def test_a_refusal_that_names_no_higher_ballot_does_not_depose_the_leader():
    """Paxos Made Simple §2.2: a late refusal of an earlier ballot, naming this leader's own ballot, is no news."""
    net = Net()
    net.elect("n1")
    leading = net.ballot("n1")
    net.engine("n1").receive("n2", Accepted(ballot=leading - 1000, ok=False, promised=leading))
    net.engine("n1").receive("n3", HeartbeatReply(ballot=leading - 1000, beat=0, ok=False, promised=leading))
    net.poll("n1")
    assert net.role("n1") == "leader"


def test_a_deposed_leader_runs_again_with_a_round_above_the_ballot_that_outbid_it():
    """Paxos Made Simple §2.5: a proposer that learns of a higher-numbered proposal tries again above it."""
    net = Net()
    net.elect("n1")
    net.engine("n1").receive("n2", Accepted(ballot=ballot(1, 1), ok=False, promised=OUTBID))
    net.poll("n1")
    net.hold = True
    net.forget()
    net.campaign("n1")
    assert {m.ballot for _, m in net.sent("n1", Prepare)} == {ballot(round_of(OUTBID) + 1, 1)}


def test_a_leader_steps_down_when_a_restarted_acceptor_remembers_a_higher_promise():
    """Paxos Made Simple §2.3: a promise survives a crash; the leader's next heartbeat meets it, and it yields."""
    net = Net()
    net.elect("n1")
    net.load("n3", promised=OUTBID)
    net.run(2 * HEARTBEAT)
    refusals = [m for _, m in net.sent("n3", HeartbeatReply) if not m.ok]
    assert refusals and refusals[0].promised == OUTBID
    assert RoleChanged("follower", ballot(1, 1)) in net.events("n1")


def test_a_hand_over_makes_the_target_lead_under_a_higher_ballot_and_keeps_every_chosen_slot():
    """Paxos Made Simple §2.4: any proposer may start phase 1; a hand-over just tells the target to do so at once,
    past the others' stickiness, after it holds everything the leader holds."""
    net = Net()
    net.elect("n1")
    net.propose("n1", b"a=1", b"b=2")
    net.tick(HEARTBEAT)
    net.engine("n1").transfer_leadership("n3")
    net.settle()
    assert net.leaders() == ["n3"]
    assert number_of(net.ballot("n3")) == 3 and net.ballot("n3") > ballot(1, 1)
    prepares = [m for _, m in net.sent("n3", Prepare)]
    assert prepares and all(m.takeover and not m.probe for m in prepares)
    net.propose("n3", b"c=3")
    net.run(2 * HEARTBEAT)
    assert all(net.machines[node].commands() == [b"a=1", b"b=2", b"c=3"] for node in net.ids)


def test_a_leader_handing_over_refuses_proposals_and_names_the_target():
    """A hand-over pauses proposals, so the target's phase 1 sees the leader's last slot."""
    net = Net()
    net.elect("n1")
    net.hold = True
    net.engine("n1").transfer_leadership("n2")
    with pytest.raises(NotLeader) as refused:
        net.engine("n1").propose(b"x")
    assert refused.value.leader_hint == "n2"


def test_a_hand_over_without_a_target_picks_the_most_caught_up_voter():
    """The voter holding most of the leader's slots needs the least catching up after phase 1."""
    net = Net()
    net.elect("n1")
    net.cut |= {("n1", "n3")}  # n3 lacks a=1; on a tie the later name would win
    net.propose("n1", b"a=1")
    net.tick(HEARTBEAT)
    net.cut.clear()
    net.engine("n1").transfer_leadership()
    net.settle()
    assert net.leaders() == ["n2"]


@pytest.mark.parametrize("target", ["n1", "n9"])
def test_a_hand_over_to_anything_but_another_voter_is_refused(target):
    """Only another voter can run phase 1."""
    net = Net()
    net.elect("n1")
    with pytest.raises(KeelError, match="not another voter"):
        net.engine("n1").transfer_leadership(target)


def test_a_takeover_prepare_is_promised_despite_a_live_leader():
    """Stickiness yields to a hand-over: the leader itself asked the target to run."""
    net = Net()
    net.elect("n1")
    net.tick(HEARTBEAT)
    rival = ballot(2, 2)
    net.engine("n3").receive("n2", Prepare(ballot=rival, first=1, takeover=True))
    (reply,) = [m for _, m in messages(net.poll("n3"), Promise)]
    assert reply.ok and net.ballot("n3") == rival


def test_a_follower_refuses_proposals_and_names_the_leader():
    """Only the leader proposes; a follower's refusal tells the client where to go."""
    net = Net()
    net.elect("n2")
    with pytest.raises(NotLeader) as refused:
        net.engine("n1").propose(b"x")
    assert refused.value.leader_hint == "n2"

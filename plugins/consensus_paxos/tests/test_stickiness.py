"""Leader stickiness and the probe: a node that merely missed heartbeats cannot depose a live leader."""

from __future__ import annotations

from keel import wire
from keel.consensus import SaveStable

from keel_consensus_paxos.ballot import ballot
from keel_consensus_paxos.messages import Heartbeat, Prepare, Promise

from .harness import ELECTION_MAX, ELECTION_MIN, HEARTBEAT, PLAIN, Net, lone, messages, step

RIVAL = ballot(2, 2)  # a ballot n2 would campaign with against n1's first one


def test_a_follower_that_hears_a_live_leader_refuses_another_nodes_probe_and_prepare():
    """Stickiness (the Paxos counterpart of Raft thesis §4.2.3): an acceptor that heard the leader within the minimum
    failure-detection timeout refuses other candidates, and promises nothing."""
    net = Net()
    net.elect("n1")
    net.tick(HEARTBEAT)
    promised = net.ballot("n3")
    net.forget()
    for probe in (True, False):
        net.engine("n3").receive("n2", Prepare(ballot=RIVAL, first=1, probe=probe))
        ready = net.poll("n3")
        assert messages(ready) == [("n2", Promise(ballot=RIVAL, ok=False, probe=probe))]
    assert net.persisted("n3", SaveStable) == []
    assert net.ballot("n3") == promised and net.engine("n3").status().leader == "n1"


def test_a_leader_refuses_another_nodes_probe():
    """Stickiness: a leader hears itself, so it never helps a rival that missed its heartbeats."""
    net = Net()
    net.elect("n1")
    net.engine("n1").receive("n2", Prepare(ballot=RIVAL, first=1, probe=True))
    assert messages(net.poll("n1")) == [("n2", Promise(ballot=RIVAL, ok=False, probe=True))]
    assert net.role("n1") == "leader"


def test_a_follower_grants_a_probe_once_the_leader_is_silent_for_the_minimum_timeout():
    """Stickiness lasts only as long as the leader is live: after `election_min` of silence, phase 1 may proceed."""
    engine = lone("n3")
    engine.tick(0.0)
    step(engine, "n1", Heartbeat(ballot=ballot(1, 1), commit=0, beat=0))
    engine.tick(ELECTION_MIN - 0.01)
    assert messages(step(engine, "n2", Prepare(ballot=RIVAL, first=1, probe=True))) == \
        [("n2", Promise(ballot=RIVAL, ok=False, probe=True))]
    engine.tick(ELECTION_MIN)
    assert messages(step(engine, "n2", Prepare(ballot=RIVAL, first=1, probe=True))) == \
        [("n2", Promise(ballot=RIVAL, ok=True, probe=True))]
    assert engine.status().term == ballot(1, 1), "granting a probe promises nothing"


def test_a_probe_is_answered_by_its_own_acceptor_without_raising_the_promise():
    """The probe only asks whether a promise would be given: no SaveStable, no reported entries."""
    engine = lone("n3")
    ready = step(engine, "n2", Prepare(ballot=RIVAL, first=1, probe=True))
    assert messages(ready) == [("n2", Promise(ballot=RIVAL, ok=True, probe=True))]
    assert ready.persist == () and engine.status().term == 0


def test_a_node_cut_off_from_the_leader_probes_in_vain_and_never_raises_a_promise():
    """Stickiness with the probe: n2 stops hearing n1, but n1 and n3 do not, so a quorum refuses n2's probe; n2
    raises no promise, not even its own, and n1 keeps leading under the same ballot."""
    net = Net()
    net.elect("n1")
    leading = net.ballot("n1")
    net.forget()
    net.cut |= {("n1", "n2")}
    net.run(4 * ELECTION_MAX)
    prepares = [m for _, m in net.sent("n2", Prepare)]
    assert prepares, "n2 never ran for leader"
    assert all(m.probe for m in prepares)
    assert [p for p in net.sent("n2", Promise) if p[1].ok] == []
    # Stable records may still move the commit watermark, but none raises a promise.
    assert {wire.decode(op.state).promised for node in net.ids for op in net.persisted(node, SaveStable)} <= {leading}
    assert [net.ballot(node) for node in net.ids] == [leading] * 3
    assert net.leaders() == ["n1"]
    net.cut.clear()
    net.run(2 * HEARTBEAT)
    assert net.engine("n2").status().leader == "n1" and net.ballot("n1") == leading


def test_without_stickiness_a_node_that_missed_heartbeats_deposes_the_live_leader():
    """Why stickiness exists: plain Paxos lets any proposer outbid the leader (Paxos Made Simple §2.4), so a node
    cut off from the leader alone raises the others' promises and takes over."""
    net = Net(options=PLAIN)
    net.elect("n1")
    leading = net.ballot("n1")
    net.cut |= {("n1", "n2")}
    net.run(4 * ELECTION_MAX)
    assert net.leaders() == ["n2"] and net.ballot("n2") > leading

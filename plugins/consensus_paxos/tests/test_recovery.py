"""Phase 1 and recovery: a new leader proposes again what a quorum's promises report, fills holes, adds its no-op."""

from __future__ import annotations

from keel.consensus import Append, EntryKind, RoleChanged, SaveStable

from keel_consensus_paxos.ballot import ballot
from keel_consensus_paxos.messages import Accept, Prepare, Promise

from .harness import HEARTBEAT, PLAIN, Net, campaign, command, lone, messages, noop, stable, step

FIVE = ("n1", "n2", "n3", "n4", "n5")


def values(engine) -> list[tuple[int, int, EntryKind, bytes]]:
    log = engine.log
    return [(e.index, e.term, e.kind, e.data) for e in log.between(log.first_index, log.last_index)]


def accepts(ready) -> dict[str, Accept]:
    return {dst: m for dst, m in messages(ready, Accept)}


def test_a_candidate_persists_its_own_promise_before_it_sends_prepare():
    """Paxos Made Simple §2.3: the proposer is an acceptor too; its own promise is durable before it asks others."""
    engine = lone("n1", promised=ballot(2, 3), options=PLAIN)
    ready = campaign(engine)
    mine = ballot(3, 1)  # a round above every ballot heard of, with its own member number
    assert [op for op in ready.persist if isinstance(op, SaveStable)] == [stable(mine)]
    assert messages(ready, Prepare, early=False) == [("n2", Prepare(ballot=mine, first=1)),
                                                      ("n3", Prepare(ballot=mine, first=1))]
    assert messages(ready, early=True) == []
    assert engine.status().role == "candidate"


def test_a_new_leader_proposes_the_value_accepted_under_the_highest_ballot_under_its_own():
    """Paxos Made Simple §2.2 (P2c): among a majority's answers, the value of the highest-numbered proposal is the one
    the new proposal must carry; Multi-Paxos proposes it again under the new ballot, which is what gets it chosen."""
    engine = lone("n1", promised=ballot(2, 3), entries=(command(1, ballot(1, 2), "a"),), options=PLAIN)
    mine = ballot(3, 1)
    campaign(engine)
    ready = step(engine, "n2", Promise(ballot=mine, ok=True, entries=(command(1, ballot(2, 3), "b"),), commit=0))
    assert engine.status().role == "leader" and engine.status().term == mine
    run = (command(1, mine, "b"), noop(2, mine))
    assert values(engine) == [(1, mine, EntryKind.COMMAND, b"b"), (2, mine, EntryKind.NOOP, b"")]
    assert [op for op in ready.persist if isinstance(op, Append)] == [Append(run)]
    sent = accepts(ready)
    assert sorted(sent) == ["n2", "n3"]
    assert all(m == Accept(ballot=mine, first=1, entries=run, commit=0) for m in sent.values())
    assert RoleChanged("leader", mine) in ready.events


def test_a_slot_no_promise_reports_is_filled_with_a_noop():
    """Paxos Made Simple §3: a new leader proposes a no-op for each gap, so later slots can be executed.

    keel acceptors hold contiguous slots, so this Promise (slots 1 and 3
    without 2) is one a classic Multi-Paxos acceptor could send; the rule
    must hold for it all the same.
    """
    engine = lone("n1", promised=ballot(1, 2), options=PLAIN)
    mine = ballot(2, 1)
    campaign(engine)
    sparse = (command(1, ballot(1, 2), "x"), command(3, ballot(1, 2), "z"))
    step(engine, "n2", Promise(ballot=mine, ok=True, entries=sparse, commit=0))
    assert values(engine) == [(1, mine, EntryKind.COMMAND, b"x"), (2, mine, EntryKind.NOOP, b""),
                              (3, mine, EntryKind.COMMAND, b"z"), (4, mine, EntryKind.NOOP, b"")]


def test_a_value_reported_as_chosen_wins_over_one_accepted_under_a_higher_ballot():
    """Paxos Made Simple §2.2-§3: a chosen value is final; a promise that reports slot 1 at or below its commit index
    reports the chosen value, and the new leader proposes exactly that one."""
    engine = lone("n1", FIVE, promised=ballot(2, 3), options=PLAIN)
    mine = ballot(3, 1)
    campaign(engine)
    step(engine, "n3", Promise(ballot=mine, ok=True, entries=(command(1, ballot(2, 3), "other"),), commit=0))
    assert engine.status().role == "candidate"  # two of five: not a quorum yet
    step(engine, "n2", Promise(ballot=mine, ok=True, entries=(command(1, ballot(1, 2), "chosen"),), commit=1))
    assert engine.status().role == "leader"
    assert values(engine) == [(1, mine, EntryKind.COMMAND, b"chosen"), (2, mine, EntryKind.NOOP, b"")]


def test_a_new_leader_writes_its_own_noop_after_every_recovered_slot():
    """Paxos Made Simple §3: the new leader's first own slot is a no-op; reads and membership changes wait for it."""
    engine = lone("n1", options=PLAIN)
    campaign(engine)
    mine = ballot(1, 1)
    held = tuple(command(i, ballot(0, 2)) for i in (1, 2, 3))
    step(engine, "n2", Promise(ballot=mine, ok=True, entries=held, commit=0))
    assert values(engine)[-1] == (4, mine, EntryKind.NOOP, b"")
    assert [slot[1] for slot in values(engine)] == [mine] * 4


def test_with_stickiness_a_candidate_probes_first_and_raises_its_promise_only_after_a_quorum_would_promise():
    """Paxos counterpart of Raft's PreVote (thesis §9.6): the probe changes nothing durable, so a node that merely
    missed heartbeats never raises promises above a live leader's ballot."""
    engine = lone("n1")
    mine = ballot(1, 1)
    ready = campaign(engine)
    assert [op for op in ready.persist if isinstance(op, SaveStable)] == []
    assert messages(ready, Prepare) == [("n2", Prepare(ballot=mine, first=1, probe=True)),
                                        ("n3", Prepare(ballot=mine, first=1, probe=True))]
    assert engine.status().term == 0
    step(engine, "n2", Promise(ballot=mine, ok=True))  # a real promise does not answer a probe
    assert engine.status().term == 0
    ready = step(engine, "n2", Promise(ballot=mine, ok=True, probe=True))
    assert [op for op in ready.persist if isinstance(op, SaveStable)] == [stable(mine)]
    assert messages(ready, Prepare) == [("n2", Prepare(ballot=mine, first=1)), ("n3", Prepare(ballot=mine, first=1))]
    step(engine, "n3", Promise(ballot=mine, ok=True, probe=True))  # a late probe answer is no promise
    assert engine.status().role == "candidate"
    step(engine, "n3", Promise(ballot=mine, ok=True))
    assert engine.status().role == "leader"


def test_a_refusal_naming_a_higher_ballot_ends_the_attempt_and_the_next_one_outbids_it():
    """Paxos Made Simple §2.5: a proposer that learns of a higher-numbered proposal abandons its own and tries a
    higher number."""
    engine = lone("n1", options=PLAIN)
    campaign(engine)
    step(engine, "n2", Promise(ballot=ballot(1, 1), ok=False, promised=ballot(7, 3)))
    assert engine.status().role == "follower"
    engine.tick(2 * 3.0)
    ready = engine.poll()
    assert {m.ballot for _, m in messages(ready, Prepare)} == {ballot(8, 1)}


def test_a_quorum_of_refusals_ends_the_attempt():
    """Paxos Made Simple §2.2: without a majority of promises there is no phase 2; the candidate backs off."""
    engine = lone("n1", options=PLAIN)
    campaign(engine)
    step(engine, "n2", Promise(ballot=ballot(1, 1), ok=False))
    assert engine.status().role == "candidate"  # n1 and n3 could still make a quorum
    step(engine, "n3", Promise(ballot=ballot(1, 1), ok=False))
    assert engine.status().role == "follower"


def test_a_value_a_minority_accepted_before_the_leader_crashed_is_recovered_and_chosen():
    """Paxos Made Simple §2.2 (P2c): n2 accepted "x" under the old ballot; the next leader's quorum includes n2, so
    "x" is proposed again and chosen, and every replica applies it."""
    net = Net(options=PLAIN)  # no stickiness: n3 may campaign the moment n1 is gone
    net.elect("n1")
    net.cut |= {("n1", "n3")}
    net.propose("n1", b"x")
    net.rewrite = lambda src, dst, msg: None if dst == "n1" and src != "n1" else msg  # no answer reaches n1
    net.settle()
    assert net.engine("n1").status().commit_index == 1 and net.slots("n2")[-1][2] == b"x"
    net.crash("n1")
    net.cut.clear()
    net.rewrite = lambda src, dst, msg: msg
    net.elect("n3")
    net.run(2 * HEARTBEAT)
    assert net.slots("n3")[1] == (2, net.ballot("n3"), b"x")
    assert [net.machines[n].commands() for n in ("n2", "n3")] == [[b"x"], [b"x"]]


def test_an_old_leaders_unchosen_value_that_no_quorum_member_holds_is_overwritten_on_its_return():
    """Paxos Made Simple §2.2: a value no majority accepted was never chosen; the new leader's no-op takes its slot,
    and the old leader, back, replaces its copy and never applies it."""
    net = Net(options=PLAIN)
    net.elect("n1")
    net.cut |= {("n1", "n2"), ("n1", "n3")}
    net.propose("n1", b"lost")
    net.settle()
    net.crash("n1")
    net.cut.clear()
    net.elect("n2")
    net.propose("n2", b"after")
    net.run(2 * HEARTBEAT)
    net.start("n1")
    net.propose("n2", b"more")
    net.run(3 * HEARTBEAT)
    # The same values everywhere; a slot n1 knew chosen keeps the ballot n1 holds it under.
    assert [(i, data) for i, _, data in net.slots("n1")] == [(i, data) for i, _, data in net.slots("n2")]
    assert all(net.machines[n].commands() == [b"after", b"more"] for n in net.ids)
    assert not any(e.data == b"lost" for e in net.machines["n1"].applied)
    assert net.engine("n1").log.entry(2) == noop(2, net.ballot("n2"))

"""The acceptor and learner: promises, acceptances, and learning what is chosen."""

from __future__ import annotations

import pytest

from keel.consensus import Append, Entry, EntryKind, SaveStable

from keel_consensus_paxos.ballot import ballot
from keel_consensus_paxos.messages import Accept, Accepted, Heartbeat, HeartbeatReply, Prepare, Promise

from .harness import command, lone, messages, stable, step

LOW, PROMISED, HIGH = ballot(4, 3), ballot(5, 1), ballot(6, 3)


def saves(ready) -> list[SaveStable]:
    return [op for op in ready.persist if isinstance(op, SaveStable)]


def test_an_acceptor_refuses_a_prepare_below_its_promise_and_names_the_promise():
    """Paxos Made Simple §2.2 (P1a): an acceptor that promised n answers no prepare below n; naming n lets the
    proposer outbid it at once."""
    engine = lone(promised=PROMISED)
    ready = step(engine, "n3", Prepare(ballot=LOW, first=1))
    assert messages(ready) == [("n3", Promise(ballot=LOW, ok=False, promised=PROMISED))]
    assert saves(ready) == []
    assert engine.status().term == PROMISED


def test_an_acceptor_refuses_an_accept_below_its_promise_and_accepts_nothing():
    """Paxos Made Simple §2.2 (P1a): an acceptor can accept a proposal numbered n iff it has not promised above n."""
    engine = lone(promised=PROMISED)
    ready = step(engine, "n3", Accept(ballot=LOW, first=1, entries=(command(1, LOW),), commit=1))
    assert messages(ready) == [("n3", Accepted(ballot=LOW, ok=False, promised=PROMISED))]
    assert ready.persist == () and ready.committed == ()
    assert engine.log.last_index == 0


def test_an_acceptor_refuses_a_heartbeat_below_its_promise_and_names_the_promise():
    """Paxos Made Simple §2.2: a leader whose ballot was outbid must learn it, even when it has nothing to propose."""
    engine = lone(promised=PROMISED, entries=(command(1, LOW),))
    ready = step(engine, "n3", Heartbeat(ballot=LOW, commit=1, beat=4))
    assert messages(ready) == [("n3", HeartbeatReply(ballot=LOW, beat=4, ok=False, promised=PROMISED))]
    assert ready.committed == ()
    assert engine.status().leader is None


def test_a_promise_is_persisted_before_the_promise_reply_leaves():
    """Paxos Made Simple §2.3: an acceptor must remember its promise across a crash, so it is durable before
    the Promise can reach the proposer: SaveStable in `persist`, the reply in `send`, never `send_early`."""
    engine = lone(entries=(command(1, LOW), command(2, LOW)))
    ready = step(engine, "n1", Prepare(ballot=HIGH, first=2))
    assert saves(ready) == [stable(HIGH)]
    assert messages(ready, early=True) == []
    assert messages(ready, early=False) == [("n1", Promise(ballot=HIGH, ok=True, entries=(command(2, LOW),),
                                                           commit=0))]
    assert engine.status().term == HIGH


def test_a_promise_survives_a_restart():
    """Paxos Made Simple §2.3: after a crash the acceptor still refuses what it promised not to accept."""
    engine = lone()
    (saved,) = saves(step(engine, "n1", Prepare(ballot=HIGH, first=1)))
    restarted = lone(promised=HIGH)
    assert restarted.status().term == HIGH
    assert saved == stable(HIGH)
    ready = step(restarted, "n3", Prepare(ballot=PROMISED, first=1))
    assert messages(ready) == [("n3", Promise(ballot=PROMISED, ok=False, promised=HIGH))]


def test_an_accept_at_the_promised_ballot_is_persisted_before_it_is_acknowledged():
    """Paxos Made Simple §2.2 (phase 2b): the acceptor accepts, and only its durable acceptance may be counted."""
    engine = lone(promised=PROMISED)
    run = (command(1, PROMISED), command(2, PROMISED))
    ready = step(engine, "n1", Accept(ballot=PROMISED, first=1, entries=run, commit=0))
    assert [op for op in ready.persist if isinstance(op, Append)] == [Append(run)]
    assert messages(ready, early=False) == [("n1", Accepted(ballot=PROMISED, ok=True, match=2))]
    assert messages(ready, early=True) == []
    assert engine.status().leader == "n1"


def test_an_accept_above_the_promise_raises_the_promise_durably():
    """Paxos Made Simple §2.2: accepting ballot n implies having promised n; the raised promise is durable too."""
    engine = lone(promised=PROMISED)
    ready = step(engine, "n3", Accept(ballot=HIGH, first=1, entries=(command(1, HIGH),), commit=0))
    assert saves(ready) == [stable(HIGH)]
    assert messages(ready) == [("n3", Accepted(ballot=HIGH, ok=True, match=1))]


def test_an_accept_after_a_gap_asks_the_leader_for_the_missing_slots():
    """keel logs are contiguous: an acceptor takes a run only where it meets what it holds of this leader's values,
    and asks for the rest (`need`) instead of leaving a hole."""
    engine = lone(promised=PROMISED)
    ready = step(engine, "n1", Accept(ballot=PROMISED, first=3, entries=(command(3, PROMISED),), commit=0))
    assert messages(ready) == [("n1", Accepted(ballot=PROMISED, ok=False, need=1))]
    assert not [op for op in ready.persist if isinstance(op, Append)]
    ready = step(engine, "n1", Accept(ballot=PROMISED, first=1, entries=(command(1, PROMISED),), commit=0))
    assert messages(ready) == [("n1", Accepted(ballot=PROMISED, ok=True, match=1))]
    ready = step(engine, "n1", Accept(ballot=PROMISED, first=3, entries=(command(3, PROMISED),), commit=0))
    assert messages(ready) == [("n1", Accepted(ballot=PROMISED, ok=False, need=2))]


def test_a_new_leaders_heartbeat_does_not_commit_slots_holding_an_older_ballots_values():
    """Paxos Made Simple §3: the commit index says slots up to it are chosen, but slots 1-3 here hold values of an
    older ballot, which need not be the chosen ones; the acceptor commits only what it holds of this leader's values."""
    stale = (command(1, LOW, "stale-1"), command(2, LOW, "stale-2"), command(3, LOW, "stale-3"))
    engine = lone(promised=LOW, entries=stale)
    ready = step(engine, "n1", Heartbeat(ballot=PROMISED, commit=3, beat=0))
    assert messages(ready) == [("n1", HeartbeatReply(ballot=PROMISED, beat=0, ok=True))]
    assert ready.committed == () and engine.status().commit_index == 0
    chosen = command(1, PROMISED, "chosen-1")
    ready = step(engine, "n1", Accept(ballot=PROMISED, first=1, entries=(chosen,), commit=3))
    assert ready.committed == (chosen,)
    assert engine.status().commit_index == 1
    ready = step(engine, "n1", Heartbeat(ballot=PROMISED, commit=3, beat=1))
    assert ready.committed == ()


def test_a_follower_holding_the_leaders_values_learns_their_commit_from_a_heartbeat():
    """Paxos Made Simple §3: a learner learns a slot is chosen from the leader, here by the commit index."""
    engine = lone(promised=PROMISED)
    run = (command(1, PROMISED), command(2, PROMISED), command(3, PROMISED))
    assert step(engine, "n1", Accept(ballot=PROMISED, first=1, entries=run, commit=0)).committed == ()
    assert step(engine, "n1", Heartbeat(ballot=PROMISED, commit=2, beat=0)).committed == run[:2]
    assert step(engine, "n1", Heartbeat(ballot=PROMISED, commit=3, beat=0)).committed == run[2:]


def test_a_restarted_acceptor_learns_again_only_what_it_holds_of_the_current_leader():
    """Engine contract: after a restart the commit index starts at the snapshot, and rises again only over slots the
    acceptor holds of the current leader's values (nothing is applied twice or from a stale value)."""
    held = (command(1, PROMISED), command(2, PROMISED))
    engine = lone(promised=PROMISED, entries=held)
    assert engine.status().commit_index == 0
    assert step(engine, "n1", Heartbeat(ballot=PROMISED, commit=2, beat=0)).committed == ()
    ready = step(engine, "n1", Accept(ballot=PROMISED, first=1, entries=held, commit=2))
    assert ready.committed == held
    assert [op for op in ready.persist if isinstance(op, Append)] == []


@pytest.mark.parametrize("message", [
    Accept(ballot=PROMISED, first=1, entries=(), commit=0),
    Heartbeat(ballot=PROMISED, commit=0, beat=0),
])
def test_any_message_of_a_leader_at_the_promise_makes_the_acceptor_follow_it(message):
    """Paxos Made Simple §3: acceptors follow the leader whose ballot they adopted, and stop suspecting it."""
    engine = lone(promised=PROMISED)
    ready = step(engine, "n1", message)
    assert engine.status().leader == "n1" and engine.status().role == "follower"
    assert any(getattr(event, "leader", None) == "n1" for event in ready.events)


def test_an_accept_carrying_a_configuration_that_does_not_decode_is_refused_and_the_node_stays_up():
    """keel's rule for peer input: bad bytes never crash a node. A CONFIG entry that does not decode comes from a
    broken peer: its Accept changes nothing, and the next good Accept is taken as usual."""
    engine = lone(promised=PROMISED)
    broken = Entry(index=1, term=PROMISED, kind=EntryKind.CONFIG, data=b"\xff not a configuration")
    ready = step(engine, "n1", Accept(ballot=PROMISED, first=1, entries=(broken,), commit=0))
    assert ready.persist == () and messages(ready) == []
    assert engine.log.last_index == 0
    ready = step(engine, "n1", Accept(ballot=PROMISED, first=1, entries=(command(1, PROMISED),), commit=0))
    assert messages(ready) == [("n1", Accepted(ballot=PROMISED, ok=True, match=1))]


def test_an_accept_whose_entries_are_not_the_run_it_names_is_refused():
    """keel's rule for peer input: a message that breaks the protocol's shape changes nothing and crashes nothing."""
    engine = lone(promised=PROMISED)
    skipping = Accept(ballot=PROMISED, first=1, entries=(command(1, PROMISED), command(3, PROMISED)), commit=0)
    ready = step(engine, "n1", skipping)
    assert ready.persist == () and messages(ready) == []
    assert engine.log.last_index == 0

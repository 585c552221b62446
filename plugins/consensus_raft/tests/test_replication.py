"""Replication: log matching, the commit rule, batching, pipelining and the leader's own durability."""

from __future__ import annotations

from keel.consensus import Append, Entry, EntryKind, MembershipChange, SaveStable, TruncateFrom

from keel_consensus_raft.messages import AppendEntries, AppendReply, TimeoutNow

from .harness import HEARTBEAT, Net


def terms(net: Net, node: str) -> list[int]:
    log = net.engine(node).log
    return [log.term_at(i) for i in range(log.first_index, log.last_index + 1)]


def test_a_new_leader_appends_a_noop_of_its_term():
    """Raft §8: a leader commits a blank entry of its own term at the start of its term."""
    net = Net()
    net.elect("n2")
    log = net.engine("n2").log
    assert (log.last_index, log.entry(1).kind, log.entry(1).term) == (1, EntryKind.NOOP, 1)
    net.run(HEARTBEAT)
    assert all(net.engine(node).status().commit_index == 1 for node in net.ids)


def test_proposals_between_polls_travel_in_one_append_and_one_persist():
    """Group commit: many proposals between two polls become one Append (one fsync) and one AppendEntries per follower."""
    net = Net()
    net.elect("n1")
    net.forget()
    net.propose("n1", *[f"k{i}=v".encode() for i in range(10)])
    ready = net.poll("n1")
    appends = [op for op in ready.persist if isinstance(op, Append)]
    assert [len(op.entries) for op in appends] == [10]
    sent = [(out.dst, len(out.message.entries)) for out in ready.send_early if isinstance(out.message, AppendEntries)]
    assert sent == [("n2", 10), ("n3", 10)]


def test_append_batches_respect_the_entry_and_byte_limits():
    """Batching is bounded: no AppendEntries carries more than max_batch_entries or max_batch_bytes (unless one entry alone)."""
    net = Net(max_batch_entries=4, max_batch_bytes=100)
    net.elect("n1")
    net.forget()
    net.propose("n1", *[bytes(30) for _ in range(10)], bytes(100))
    net.settle()
    batches = [m.entries for dst, m in net.sent("n1", AppendEntries) if dst == "n2" and m.entries]
    assert [len(b) for b in batches] == [3, 3, 3, 1, 1]
    assert all(sum(len(e.data) for e in b) <= 100 for b in batches)
    assert terms(net, "n2") == terms(net, "n1")


def test_a_leader_pipelines_up_to_max_inflight_appends_then_waits_for_acks():
    """Flow control: in REPLICATE mode at most max_inflight AppendEntries are unacknowledged per follower."""
    net = Net(max_batch_entries=1, max_inflight=3)
    net.elect("n1")
    net.hold = True
    net.forget()
    net.propose("n1", *[b"x"] * 10)
    net.settle()
    assert [m.entries[0].index for dst, m in net.sent("n1", AppendEntries) if dst == "n2"] == [2, 3, 4]
    while net.queue and not (net.queue[0][1] == "n2" and isinstance(net.queue[0][2], AppendEntries)):
        net.queue.rotate(-1)
    net.deliver_one()  # n2 takes entry 2 and acknowledges it
    while not (net.queue[0][1] == "n1" and net.queue[0][0] == "n2"):
        net.queue.rotate(-1)
    net.deliver_one()
    assert [m.entries[0].index for dst, m in net.sent("n1", AppendEntries) if dst == "n2"] == [2, 3, 4, 5]
    net.hold = False
    net.settle()
    assert terms(net, "n2") == terms(net, "n1")


def test_a_leader_counts_itself_only_once_its_own_entries_are_durable():
    """Durability before acknowledgement: the leader's entries count towards a majority only after its own fsync."""
    net = Net()
    net.elect("n1")
    net.cut.add(("n1", "n3"))
    lost_notes = True
    net.rewrite = lambda src, dst, msg: None if lost_notes and src == dst else msg
    (index,) = net.propose("n1", b"a=1")
    net.settle()
    assert net.engine("n2").log.last_index == index  # the follower holds it, but that is one of three
    assert net.engine("n1").status().commit_index < index
    lost_notes = False
    net.tick(HEARTBEAT)  # the heartbeat repeats the lost note
    assert net.engine("n1").status().commit_index == index


def test_a_follower_rejects_an_append_that_does_not_follow_its_log():
    """Raft §5.3: a follower refuses entries unless its log holds the entry at (prev_index, prev_term)."""
    net = Net()
    net.load("n2", term=2, log=[(1, 1), (2, 2)])
    net.tick(0.0)
    net.engine("n2").receive("n1", AppendEntries(term=3, prev_index=2, prev_term=3, entries=(), commit=0))
    (reply,) = [out.message for out in net.poll("n2").send]
    assert reply == AppendReply(term=3, success=False, index=2, hint_index=2, hint_term=2)
    assert terms(net, "n2") == [1, 2]


def test_a_conflicting_suffix_is_truncated_and_replaced_by_the_leaders_entries():
    """Raft §5.3: if an entry conflicts with a new one (same index, other term), it and all after it are deleted."""
    net = Net()
    net.load("n1", term=3, log=[(1, 1), (2, 1), (3, 3)])
    net.load("n2", term=3, log=[(1, 1), (2, 1), (3, 2), (4, 2)])
    net.load("n3", term=3, log=[(1, 1), (2, 1)])
    net.elect("n1")
    net.run(HEARTBEAT)
    assert terms(net, "n2") == terms(net, "n1") == [1, 1, 3, 4]
    ops = [op for op in net.persisted("n2") if isinstance(op, (Append, TruncateFrom))]
    assert isinstance(ops[0], TruncateFrom) and ops[0].index == 3
    assert [e.index for e in ops[1].entries] == [3, 4]


def test_a_far_behind_follower_is_found_in_one_round_trip():
    """Raft §5.3 (optimization): a rejection carries a hint, so the leader skips the follower's whole gap at once."""
    net = Net()
    net.load("n1", term=1, log=[(i, 1) for i in range(1, 51)])
    net.load("n2", term=1, log=[(i, 1) for i in range(1, 51)])
    net.load("n3", term=1, log=[(i, 1) for i in range(1, 6)])
    net.elect("n1")
    rejections = [m for dst, m in net.sent("n3", AppendReply) if not m.success]
    assert len(rejections) == 1 and rejections[0].hint_index == 5
    assert terms(net, "n3") == terms(net, "n1")


def test_a_lost_append_is_sent_again():
    """Liveness under loss: entries whose AppendEntries was lost reach the follower after a few heartbeats."""
    net = Net()
    net.elect("n1")
    lost = []

    def lose_first(src, dst, msg):
        if dst == "n2" and isinstance(msg, AppendEntries) and msg.entries and not lost:
            lost.append(msg)
            return None
        return msg

    net.rewrite = lose_first
    net.propose("n1", b"a=1")
    net.settle()
    assert lost and net.engine("n2").log.last_index == 1
    net.run(5 * HEARTBEAT)
    assert terms(net, "n2") == terms(net, "n1")


def test_a_stale_duplicate_append_never_truncates_matching_entries():
    """Raft §5.3: only a conflicting entry causes truncation; a delayed copy of an old append leaves later entries alone."""
    net = Net()
    net.elect("n1")
    net.propose("n1", b"a=1")
    net.settle()
    (old,) = [m for dst, m in net.sent("n1", AppendEntries) if dst == "n2" and m.entries and m.entries[-1].index == 2]
    net.propose("n1", b"b=2", b"c=3")
    net.settle()
    net.forget()
    net.engine("n2").receive("n1", old)
    ready = net.poll("n2")
    assert not [op for op in ready.persist if isinstance(op, TruncateFrom)]
    assert net.engine("n2").log.last_index == 4


def test_followers_learn_the_commit_index_and_apply_each_entry_once_in_order():
    """Raft §5.3 and the engine contract: committed entries reach every state machine in index order, exactly once."""
    net = Net(("n1", "n2", "n3", "n4", "n5"))
    net.elect("n1")
    for round_ in range(5):
        net.propose("n1", *[f"k{round_}{i}=v".encode() for i in range(7)])
        net.tick(HEARTBEAT)
    net.run(HEARTBEAT)
    expected = [f"k{r}{i}=v".encode() for r in range(5) for i in range(7)]
    for node in net.ids:
        indexes = [e.index for e in net.machines[node].applied]
        assert indexes == list(range(1, len(indexes) + 1))
        assert net.machines[node].commands() == expected


def test_an_old_term_entry_is_committed_only_under_an_entry_of_the_leaders_term():
    """Raft §5.4.2, figure 8: counting replicas commits only current-term entries; else a later leader may erase them.

    S1 leads term 4 with (2, term 2) on a majority but its NOOP (3, term 4)
    on none; S5, holding (2, term 3), can still win and overwrite index 2.
    Had S1 committed index 2 by counting replicas, two state machines would
    apply different commands at index 2.
    """
    ids = ("s1", "s2", "s3", "s4", "s5")
    net = Net(ids)
    for node, log in [("s1", [(1, 1), (2, 2)]), ("s2", [(1, 1), (2, 2)]), ("s3", [(1, 1)]), ("s4", [(1, 1)]),
                      ("s5", [(1, 1), (2, 3)])]:
        net.load(node, term=3, log=log)
    net.cut |= {("s1", "s5"), ("s5", "s1")}

    def hold_back_term_4(src, dst, msg):
        if isinstance(msg, AppendEntries) and src != dst:
            return AppendEntries(term=msg.term, prev_index=msg.prev_index, prev_term=msg.prev_term,
                                 entries=tuple(e for e in msg.entries if e.term < 4), commit=msg.commit, beat=msg.beat)
        return msg

    net.rewrite = hold_back_term_4
    net.elect("s1")
    net.run(HEARTBEAT)
    assert net.engine("s1").status().term == 4
    assert all(net.engine(node).log.term_at(2) == 2 for node in ("s1", "s2", "s3"))
    assert net.engine("s1").status().commit_index < 2

    net.crash("s1")
    net.cut.clear()
    net.rewrite = lambda src, dst, msg: msg
    net.elect("s5")  # at once, before s2-s4 time out and elect one of themselves (also legal)
    net.run(HEARTBEAT)
    net.restart("s1")
    net.run(3 * HEARTBEAT)
    at_two = {(node, e.term) for node in ids for e in net.machines[node].applied if e.index == 2}
    assert {term for _, term in at_two} == {3}, f"index 2 applied with different terms: {sorted(at_two)}"


def test_a_leaders_appends_leave_before_its_own_write_but_its_acknowledgement_after():
    """Thesis §10.2.1: the leader may write its log in parallel with replicating it; it counts itself once durable."""
    net = Net(("n1", "n2", "n3"))
    net.elect("n1")
    net.forget()
    net.propose("n1", b"k=v")
    ready = net.poll("n1")
    assert any(isinstance(op, Append) for op in ready.persist)
    assert {out.dst for out in ready.send_early if isinstance(out.message, AppendEntries)} == {"n2", "n3"}
    assert [out.dst for out in ready.send if isinstance(out.message, AppendReply)] == ["n1"]


def test_an_append_carrying_a_configuration_that_does_not_decode_is_refused_and_the_follower_stays_up():
    """keel's rule for peer input: bad bytes never crash a node. A CONFIG entry that does not decode comes from a
    broken leader: the follower refuses that AppendEntries whole, and takes the next good one."""
    net = Net(("n1", "n2", "n3"))
    net.elect("n1")
    net.run(HEARTBEAT)
    follower = net.engine("n2")
    last, term = follower.log.last_index, follower.status().term
    broken = Entry(index=last + 1, term=term, kind=EntryKind.CONFIG, data=b"\xff not a configuration")
    follower.receive("n1", AppendEntries(term=term, prev_index=last, prev_term=term, entries=(broken,), commit=0))
    ready = follower.poll()
    assert ready.persist == () and ready.send == ()
    assert follower.log.last_index == last
    net.propose("n1", b"k=v")
    net.run(HEARTBEAT)
    assert follower.log.last_index == last + 1


def test_an_append_whose_entries_do_not_follow_prev_index_is_refused():
    """keel's rule for peer input: a message that breaks the protocol's shape changes nothing and crashes nothing."""
    net = Net(("n1", "n2", "n3"))
    net.elect("n1")
    net.run(HEARTBEAT)
    follower = net.engine("n2")
    last, term = follower.log.last_index, follower.status().term
    gap = Entry(index=last + 2, term=term, kind=EntryKind.COMMAND, data=b"x")
    follower.receive("n1", AppendEntries(term=term, prev_index=last, prev_term=term, entries=(gap,), commit=0))
    ready = follower.poll()
    assert ready.persist == () and ready.send == ()
    assert follower.log.last_index == last


def test_a_lone_voter_that_wins_at_once_sends_its_appends_only_after_its_term_is_durable():
    """Raft §5.2 with §10.2.1: a lone voter raises its term and wins in one step; its appends to learners in
    that Ready wait for the term's fsync (`send`), or a crash before it could reuse the term for other entries."""
    net = Net(("n1", "n2"), voters=("n1",))
    net.elect("n1")
    net.engine("n1").change_membership(MembershipChange("add_learner", "n2"))
    net.run(HEARTBEAT)
    engine = net.restart("n1")
    engine.tick(0.0)
    engine.poll()
    engine.receive("harness", TimeoutNow(term=engine.status().term))  # an election, won in the same step
    engine.propose(b"k=v")
    ready = engine.poll()
    assert any(isinstance(op, SaveStable) for op in ready.persist)
    assert [o.dst for o in ready.send_early if isinstance(o.message, AppendEntries)] == []
    assert "n2" in [o.dst for o in ready.send if isinstance(o.message, AppendEntries)]

"""The core's state machine, driven only through committed log entries.

The rules are etcd's for the keyspace, leases and watches, and the Raft
thesis's (§6.3) for sessions: a retried request is answered with its first
answer and applied once. Locks and elections are in `test_machine_locks`,
the property tests over drawn command sequences in `test_machine_model`.
"""

from __future__ import annotations

import pytest

from keel import wire
from keel.consensus import Entry, EntryKind
from keel.core.api import (
    Compact, CompactReply, Compare, Delete, DeleteReply, Event, KeyValue, LeaseGrant, LeaseGrantReply, LeaseRevoke,
    LeaseRevokeReply, Put, PutReply, Range, RangeReply, Txn, TxnReply, Watch,
)
from keel.core.machine import Command, CoreMachine, LeaseExpire
from keel.errors import Compacted, KeelError

from .machines import Feed, entry, error, get, live


# --- entries ------------------------------------------------------------------------------------


def test_a_put_through_the_log_is_answered_with_its_revision():
    feed = Feed()
    assert feed.send(Put(b"a", b"1")) == PutReply(revision=1)
    assert feed.machine.index == 1


@pytest.mark.parametrize("kind", [EntryKind.NOOP, EntryKind.CONFIG])
def test_entries_other_than_commands_change_only_the_index(kind):
    feed = Feed()
    feed.send(Put(b"a", b"1"))
    before = (feed.machine.digest, feed.machine.store.revision, live(feed.machine))
    assert feed.machine.apply(Entry(2, 1, kind, b"whatever")) is None
    assert feed.machine.index == 2
    assert (feed.machine.digest, feed.machine.store.revision, live(feed.machine)) == before


def test_a_command_that_does_not_decode_is_answered_with_an_error_naming_its_index():
    """Every node answers a bad entry alike instead of crashing; it still joins the digest."""
    machine = CoreMachine()
    answer = machine.apply(Entry(4, 1, EntryKind.COMMAND, b"\xff\x00garbage"))
    error(answer, "error", r"^index 4: command does not decode")
    assert machine.digest != b""
    assert machine.store.revision == 0


def test_a_message_that_is_not_a_command_is_refused():
    machine = CoreMachine()
    answer = machine.apply(Entry(1, 1, EntryKind.COMMAND, wire.encode(Put(b"a", b"1"))))
    error(answer, "error", r"^index 1: Put is not a command$")
    assert len(machine.store) == 0


def test_a_read_through_the_log_is_refused():
    error(Feed().send(Range(b"a")), "error", "Range is not a request the core applies")


def test_a_watch_through_the_log_is_refused():
    error(Feed().send(Watch(b"a")), "error", "Watch is not a request the core applies")


def test_the_digest_depends_on_every_command_and_its_index():
    def digest(*entries: Entry) -> bytes:
        machine = CoreMachine()
        for e in entries:
            machine.apply(e)
        return machine.digest

    one = Command("c", 1, 0, 0.0, Put(b"a", b"1"))
    other = Command("c", 1, 0, 0.0, Put(b"a", b"2"))
    assert digest(entry(1, one)) == digest(entry(1, one))
    assert digest(entry(1, one)) != digest(entry(1, other))
    assert digest(entry(1, one)) != digest(entry(2, one))
    assert digest(entry(1, one), entry(2, other)) != digest(entry(1, other), entry(2, one))


# --- puts, deletes, ranges ----------------------------------------------------------------------


def test_a_put_counts_versions_and_keeps_its_create_revision():
    feed = Feed()
    feed.send(Put(b"a", b"1"))
    feed.send(Put(b"b", b"1"))
    feed.send(Put(b"a", b"2"))
    assert get(feed, b"a") == KeyValue(b"a", b"2", create_revision=1, mod_revision=3, version=2)


def test_a_put_with_prev_kv_returns_the_key_as_it_was():
    feed = Feed()
    feed.send(Put(b"a", b"1"))
    assert feed.send(Put(b"a", b"2", prev_kv=True)) == PutReply(2, KeyValue(b"a", b"1", 1, 1, 1))
    assert feed.send(Put(b"a", b"3")) == PutReply(3, None)


def test_a_delete_of_nothing_does_not_move_the_revision():
    """etcd: a request that changes nothing does not bump the revision."""
    feed = Feed()
    feed.send(Put(b"a", b"1"))
    assert feed.send(Delete(b"missing")) == DeleteReply(revision=1, deleted=0)
    assert feed.send(Delete(b"z", prefix=True)) == DeleteReply(revision=1, deleted=0)
    assert feed.send(Put(b"b", b"1")) == PutReply(2)


def test_a_prefix_delete_is_one_revision_and_counts_what_it_deleted():
    feed = Feed()
    for key in (b"a", b"ab", b"b"):
        feed.send(Put(key, b"v"))
    reply = feed.send(Delete(b"a", prefix=True, prev_kv=True))
    assert reply == DeleteReply(4, 2, (KeyValue(b"a", b"v", 1, 1, 1), KeyValue(b"ab", b"v", 2, 2, 1)))
    assert list(live(feed.machine)) == [b"b"]


def test_a_delete_without_prev_kv_returns_no_keys():
    feed = Feed()
    feed.send(Put(b"a", b"1"))
    assert feed.send(Delete(b"a")) == DeleteReply(2, 1, ())


def test_a_limited_range_counts_all_and_says_there_is_more():
    """etcd: `count` counts every key in the range; `more` when `limit` cut it."""
    feed = Feed()
    for key in (b"k3", b"k1", b"k2", b"x"):
        feed.send(Put(key, b"v"))
    reply = feed.machine.read(Range(b"k", prefix=True, limit=2))
    assert [kv.key for kv in reply.kvs] == [b"k1", b"k2"]
    assert (reply.count, reply.more, reply.revision) == (3, True, 4)
    whole = feed.machine.read(Range(b"k", prefix=True, limit=3))
    assert (len(whole.kvs), whole.count, whole.more) == (3, 3, False)


def test_a_keys_only_range_returns_no_values():
    feed = Feed()
    feed.send(Put(b"a", b"secret"))
    (kv,) = feed.machine.read(Range(b"a", keys_only=True)).kvs
    assert kv == KeyValue(b"a", b"", 1, 1, 1)


def test_a_range_of_a_missing_key_is_empty_at_the_current_revision():
    feed = Feed()
    feed.send(Put(b"a", b"1"))
    assert feed.machine.read(Range(b"b")) == RangeReply(1, (), 0, False)


def test_a_read_of_something_else_is_refused():
    with pytest.raises(KeelError, match="Put is not a read"):
        CoreMachine().read(Put(b"a", b"1"))


# --- transactions -----------------------------------------------------------------------------------


def test_a_txn_runs_success_when_every_compare_holds():
    feed = Feed()
    feed.send(Put(b"a", b"1"))
    reply = feed.send(Txn(compare=(Compare(b"a", "value", "==", b"1"), Compare(b"a", "version", "==", number=1)),
                          success=(Put(b"a", b"2"),), failure=(Put(b"f", b"x"),)))
    assert reply == TxnReply(2, True, (PutReply(2),))
    assert get(feed, b"a").value == b"2" and get(feed, b"f") is None


def test_a_txn_runs_failure_when_a_compare_fails():
    feed = Feed()
    feed.send(Put(b"a", b"1"))
    reply = feed.send(Txn(compare=(Compare(b"a", "value", "==", b"1"), Compare(b"a", "mod", ">", number=5)),
                          success=(Put(b"a", b"2"),), failure=(Put(b"f", b"x"),)))
    assert reply == TxnReply(2, False, (PutReply(2),))
    assert get(feed, b"a").value == b"1" and get(feed, b"f").value == b"x"


def test_a_txn_without_compares_succeeds():
    assert Feed().send(Txn(success=(Put(b"a", b"1"),))).succeeded


def test_all_writes_of_a_txn_share_one_revision():
    """etcd: a txn is one revision, however many keys it writes."""
    feed = Feed()
    feed.send(Put(b"old", b"v"))
    reply = feed.send(Txn(success=(Put(b"a", b"1"), Put(b"b", b"1"), Delete(b"old"))))
    assert reply == TxnReply(2, True, (PutReply(2), PutReply(2), DeleteReply(2, 1)))
    assert {kv.mod_revision for kv in live(feed.machine).values()} == {2}
    assert feed.send(Put(b"c", b"1")).revision == 3


def test_create_revision_zero_makes_a_put_if_absent():
    cas = Txn(compare=(Compare(b"lock", "create", "==", number=0),), success=(Put(b"lock", b"me"),),
              failure=(Range(b"lock"),))
    feed = Feed()
    assert feed.send(cas).succeeded
    second = feed.send(cas, client="bob")
    assert not second.succeeded
    assert second.replies[0].kvs[0].value == b"me"


def test_a_txn_of_reads_only_does_not_move_the_revision():
    feed = Feed()
    feed.send(Put(b"a", b"1"))
    assert feed.send(Txn(success=(Range(b"a"), Delete(b"missing")))).revision == 1
    assert feed.send(Put(b"b", b"1")).revision == 2


def test_a_range_inside_a_txn_sees_the_writes_before_it_at_the_txn_revision():
    """etcd: a read in a txn sees its earlier writes, served at the revision they make."""
    feed = Feed()
    feed.send(Put(b"a", b"1"))
    reply = feed.send(Txn(success=(Range(b"a"), Put(b"a", b"2"), Range(b"a"))))
    before, _, after = reply.replies
    assert (before.revision, before.kvs[0].value) == (1, b"1")
    assert (after.revision, after.kvs[0].value, after.kvs[0].mod_revision) == (2, b"2", 2)


def test_a_txn_that_writes_a_key_twice_changes_nothing():
    """etcd refuses the whole txn ("duplicate key given in txn request"), before any write."""
    feed = Feed()
    feed.send(Put(b"a", b"1"))
    reply = feed.send(Txn(success=(Put(b"b", b"1"), Put(b"a", b"2"), Put(b"a", b"3"))))
    error(reply, "error", r"key b'a' is written twice")
    assert live(feed.machine) == {b"a": KeyValue(b"a", b"1", 1, 1, 1)}
    assert feed.machine.store.revision == 1


def test_a_txn_that_puts_inside_a_range_it_deletes_changes_nothing():
    feed = Feed()
    feed.send(Put(b"ab", b"1"))
    error(feed.send(Txn(success=(Delete(b"a", prefix=True), Put(b"ab", b"2")))), "error", "both put and deleted")
    assert get(feed, b"ab").value == b"1"


def test_a_txn_with_a_put_under_a_missing_lease_changes_nothing():
    feed = Feed()
    reply = feed.send(Txn(success=(Put(b"a", b"1"), Put(b"b", b"1", lease=9))))
    error(reply, "lease_expired", "lease 9 does not exist")
    assert live(feed.machine) == {}


def test_the_branch_not_taken_is_not_checked():
    feed = Feed()
    reply = feed.send(Txn(compare=(Compare(b"a", "version", "==", number=0),), success=(Put(b"a", b"1"),),
                          failure=(Put(b"x", b"1"), Put(b"x", b"2"))))
    assert reply.succeeded


def test_a_txn_refuses_an_operation_that_is_not_put_delete_or_range():
    feed = Feed()
    error(feed.send(Txn(success=(Put(b"a", b"1"), LeaseGrant(5.0)))), "error", "LeaseGrant cannot run inside")
    assert live(feed.machine) == {} and len(feed.machine.leases) == 0


def test_a_txn_with_a_bad_compare_is_refused_even_when_an_earlier_compare_fails():
    """A malformed request is refused alike whatever the keys hold, not only when the earlier compares pass."""
    feed = Feed()
    bad = Txn(compare=(Compare(b"a", "version", "==", number=5), Compare(b"a", "version", "<=", number=1)),
              failure=(Put(b"f", b"1"),))
    error(feed.send(bad), "error", r"operator '<=' is not one of")
    assert live(feed.machine) == {}


def test_a_txn_puts_prev_kv_and_deletes_prev_kv_like_single_requests():
    feed = Feed()
    feed.send(Put(b"a", b"1"))
    feed.send(Put(b"b", b"1"))
    reply = feed.send(Txn(success=(Put(b"a", b"2", prev_kv=True), Delete(b"b", prev_kv=True))))
    assert reply.replies == (PutReply(3, KeyValue(b"a", b"1", 1, 1, 1)),
                             DeleteReply(3, 1, (KeyValue(b"b", b"1", 2, 2, 1),)))


# --- leases -----------------------------------------------------------------------------------------


def test_a_lease_grant_picks_an_id_and_does_not_move_the_revision():
    feed = Feed()
    feed.send(Put(b"a", b"1"))
    assert feed.send(LeaseGrant(5.0)) == LeaseGrantReply(1, 5.0, 1)
    assert feed.send(LeaseGrant(5.0, id=7)) == LeaseGrantReply(7, 5.0, 1)


def test_a_lease_grant_out_of_bounds_is_an_error_naming_the_ttl():
    error(Feed().send(LeaseGrant(0.001)), "error", r"^lease grant: lease ttl 0.001 s is outside")


def test_a_lease_grant_of_a_taken_id_is_an_error():
    feed = Feed()
    feed.send(LeaseGrant(5.0, id=3))
    error(feed.send(LeaseGrant(9.0, id=3)), "error", "lease 3 already exists")
    assert feed.machine.leases.leases[3].ttl == 5.0


def test_revoking_a_lease_deletes_its_keys_in_one_revision():
    """etcd: revoking a lease deletes every key attached to it, in one revision."""
    feed = Feed()
    feed.send(LeaseGrant(5.0))
    feed.send(Put(b"a", b"1", lease=1))
    feed.send(Put(b"b", b"1", lease=1))
    feed.send(Put(b"c", b"1"))
    assert feed.send(LeaseRevoke(1)) == LeaseRevokeReply(4)
    assert list(live(feed.machine)) == [b"c"]
    assert [(e.kind, e.kv.key, e.kv.mod_revision) for e in feed.machine.events(b"", prefix=True, start=4)] == [
        ("delete", b"a", 4), ("delete", b"b", 4)]
    assert 1 not in feed.machine.leases


def test_revoking_a_lease_without_keys_does_not_move_the_revision():
    feed = Feed()
    feed.send(Put(b"a", b"1"))
    feed.send(LeaseGrant(5.0))
    assert feed.send(LeaseRevoke(1)) == LeaseRevokeReply(1)


def test_revoking_a_missing_lease_is_a_lease_expired_error():
    error(Feed().send(LeaseRevoke(4)), "lease_expired", r"lease 4 does not exist")


def test_the_leaders_expiry_deletes_the_lease_and_its_keys():
    feed = Feed()
    feed.send(LeaseGrant(5.0))
    feed.send(Put(b"a", b"1", lease=1))
    assert feed.leader(LeaseExpire(1)) == LeaseRevokeReply(2)
    assert live(feed.machine) == {} and 1 not in feed.machine.leases


def test_an_expiry_applied_twice_is_an_error_the_second_time_and_changes_nothing():
    """The leader proposes an expiry again when it seems lost; the second copy must be harmless."""
    feed = Feed()
    feed.send(LeaseGrant(5.0))
    feed.send(Put(b"a", b"1", lease=1))
    feed.leader(LeaseExpire(1))
    feed.send(Put(b"b", b"1"))
    error(feed.leader(LeaseExpire(1)), "lease_expired", "lease 1 does not exist")
    assert list(live(feed.machine)) == [b"b"] and feed.machine.store.revision == 3


def test_a_put_under_a_missing_lease_is_refused_and_changes_nothing():
    feed = Feed()
    error(feed.send(Put(b"a", b"1", lease=3)), "lease_expired", r"put b'a': lease 3 does not exist")
    assert feed.machine.store.revision == 0


def test_a_put_without_a_lease_detaches_the_key():
    """etcd: a put names the key's lease anew; without one, revoking the old lease leaves the key."""
    feed = Feed()
    feed.send(LeaseGrant(5.0))
    feed.send(Put(b"a", b"1", lease=1))
    feed.send(Put(b"a", b"2"))
    feed.send(LeaseRevoke(1))
    assert get(feed, b"a") == KeyValue(b"a", b"2", 1, 2, 2, 0)


def test_a_put_under_another_lease_moves_the_key():
    feed = Feed()
    feed.send(LeaseGrant(5.0))
    feed.send(LeaseGrant(5.0))
    feed.send(Put(b"a", b"1", lease=1))
    feed.send(Put(b"a", b"2", lease=2))
    feed.send(LeaseRevoke(1))
    assert get(feed, b"a").lease == 2
    feed.send(LeaseRevoke(2))
    assert get(feed, b"a") is None


def test_a_deleted_key_no_longer_belongs_to_its_lease():
    feed = Feed()
    feed.send(LeaseGrant(5.0))
    feed.send(Put(b"a", b"1", lease=1))
    feed.send(Delete(b"a"))
    feed.send(Put(b"a", b"2"))
    assert feed.send(LeaseRevoke(1)) == LeaseRevokeReply(3)
    assert get(feed, b"a").value == b"2"


def test_a_txn_put_under_a_lease_attaches_the_key():
    feed = Feed()
    feed.send(LeaseGrant(5.0))
    feed.send(Txn(success=(Put(b"a", b"1", lease=1),)))
    feed.send(LeaseRevoke(1))
    assert live(feed.machine) == {}


def test_a_lease_compare_sees_the_keys_lease():
    feed = Feed()
    feed.send(LeaseGrant(5.0, id=4))
    feed.send(Put(b"a", b"1", lease=4))
    assert feed.send(Txn(compare=(Compare(b"a", "lease", "==", number=4),))).succeeded
    assert not feed.send(Txn(compare=(Compare(b"b", "lease", "!=", number=0),))).succeeded


# --- watches and compaction -------------------------------------------------------------------------


def test_events_from_a_revision_are_every_change_since_in_order():
    feed = Feed()
    feed.send(Put(b"a", b"1"))
    feed.send(Put(b"b", b"1"))
    feed.send(Delete(b"a"))
    assert feed.machine.events(b"a", prefix=False, start=1) == [
        Event("put", KeyValue(b"a", b"1", 1, 1, 1)), Event("delete", KeyValue(b"a", b"", 1, 3, 0))]
    assert [e.kv.key for e in feed.machine.events(b"", prefix=True, start=2)] == [b"b", b"a"]


def test_a_compact_forgets_the_history_and_a_watch_below_it_is_compacted():
    """etcd: compacting at a revision keeps it; a watch from before it fails, and the watcher must read afresh."""
    feed = Feed()
    for key in (b"a", b"b", b"c"):
        feed.send(Put(key, b"v"))
    assert feed.send(Compact(2)) == CompactReply(3)
    with pytest.raises(Compacted, match="watch from revision 1: the history before 2 was compacted"):
        feed.machine.events(b"", prefix=True, start=1)
    assert [e.kv.key for e in feed.machine.events(b"", prefix=True, start=2)] == [b"b", b"c"]
    assert len(live(feed.machine)) == 3


def test_a_compact_does_not_move_the_revision():
    feed = Feed()
    feed.send(Put(b"a", b"v"))
    feed.send(Compact(1))
    assert feed.send(Put(b"b", b"v")).revision == 2


def test_a_compact_to_the_future_or_the_past_is_an_error():
    feed = Feed()
    feed.send(Put(b"a", b"v"))
    error(feed.send(Compact(5)), "error", r"revision 5 is in the future \(current revision 1\)")
    feed.send(Compact(1))
    error(feed.send(Compact(1)), "error", r"revision 1 is already compacted")


# --- sessions through the machine ---------------------------------------------------------------


def test_a_retried_request_gets_its_first_answer_and_is_applied_once():
    """Raft thesis §6.3: the state machine discards a duplicate, answering with the saved response."""
    feed = Feed()
    assert feed.send(Put(b"a", b"1"), seq=1) == PutReply(1)
    feed.send(Put(b"a", b"2"), seq=2)
    assert feed.send(Put(b"a", b"1"), seq=1) == PutReply(1)
    assert get(feed, b"a") == KeyValue(b"a", b"2", 1, 2, 2)
    assert feed.machine.store.revision == 2


def test_a_retried_txn_is_not_evaluated_again():
    feed = Feed()
    cas = Txn(compare=(Compare(b"n", "version", "==", number=0),), success=(Put(b"n", b"1"),))
    assert feed.send(cas, seq=1).succeeded
    assert feed.send(cas, seq=1).succeeded  # a second evaluation would fail the compare
    assert get(feed, b"n").version == 1


def test_a_retried_lease_grant_gets_the_same_lease():
    feed = Feed()
    feed.send(LeaseGrant(5.0), seq=1)
    assert feed.send(LeaseGrant(5.0), seq=1) == LeaseGrantReply(1, 5.0, 0)
    assert len(feed.machine.leases) == 1


def test_a_retried_bad_request_gets_the_same_error():
    feed = Feed()
    first = feed.send(LeaseRevoke(9), seq=1)
    feed.send(LeaseGrant(5.0, id=9), seq=2)
    assert feed.send(LeaseRevoke(9), seq=1) == first
    assert 9 in feed.machine.leases


def test_the_same_seq_from_two_clients_is_two_requests():
    feed = Feed()
    feed.send(Put(b"a", b"1"), client="alice", seq=1)
    assert feed.send(Put(b"b", b"1"), client="bob", seq=1) == PutReply(2)


def test_a_retry_at_or_below_acked_is_refused_and_not_applied():
    """The client promised never to retry it, so its answer was forgotten; applying it again could double it."""
    feed = Feed()
    feed.send(Put(b"a", b"1"), seq=1)
    feed.send(Put(b"b", b"1"), seq=2, acked=1)
    reply = feed.send(Put(b"a", b"1"), seq=1, acked=1)
    error(reply, "session_expired", r"session alice: request 1 is a late copy of one the client acknowledged")
    assert feed.machine.store.revision == 2


def test_an_idle_session_expires_by_log_time_and_its_client_is_told():
    feed = Feed()
    feed.send(Put(b"a", b"1"), seq=1, at=0.0)
    feed.send(Put(b"b", b"1"), client="bob", seq=1, at=3601.0)
    error(feed.send(Put(b"c", b"1"), seq=2, acked=1, at=3601.0), "session_expired", r"session alice: expired")
    assert get(feed, b"c") is None


def test_a_session_lives_while_its_client_talks():
    feed = Feed()
    for i, at in enumerate((0.0, 3000.0, 6000.0, 9000.0), start=1):
        assert isinstance(feed.send(Put(b"a", b"%d" % i), seq=i, acked=i - 1, at=at), PutReply)


def test_the_leaders_commands_are_outside_every_session():
    feed = Feed()
    feed.send(LeaseGrant(5.0))
    feed.send(LeaseGrant(5.0))
    assert feed.leader(LeaseExpire(1)) == LeaseRevokeReply(0)
    assert feed.leader(LeaseExpire(2)) == LeaseRevokeReply(0)  # seq 0 twice, yet both applied
    assert len(feed.machine.leases) == 0




def test_the_history_is_trimmed_to_its_limit_as_commands_apply():
    """The machine bounds its watch history by itself, at the same index on every node."""
    feed = Feed(CoreMachine(history_limit=3))
    for i in range(6):
        feed.send(Put(b"k%d" % i, b"v"))
    assert feed.machine.store.history_length() <= 4
    with pytest.raises(Compacted):
        feed.machine.events(b"", prefix=True, start=1)

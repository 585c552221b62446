"""Locks and elections, which the state machine keeps as keys (etcd's v3lock and election recipes).

A lock's waiters are keys under its name, each on its owner's lease; the
holder is the one with the lowest create revision, which is also its
fencing token, so tokens only grow. An election is the same queue whose
first candidate leads.
"""

from __future__ import annotations

import pytest

from keel.core.api import (
    Campaign, CampaignReply, KeyValue, Leader, LeaderReply, LeaseGrant, Lock, LockReply, Put, ReleaseReply, Resign,
    Unlock,
)
from keel.core.machine import LOCK_PREFIX, MAX_NAME, CoreMachine, LeaseExpire

from .machines import Feed, candidacy_key, error, get, live, lock_key


# --- locks --------------------------------------------------------------------------------------------


def locking_feed(*leases: int) -> Feed:
    feed = Feed()
    for lease in leases:
        feed.send(LeaseGrant(10.0, id=lease))
    return feed


def test_the_first_to_lock_holds_it_with_its_create_revision_as_token():
    feed = locking_feed(1)
    feed.send(Put(b"x", b"1"))
    assert feed.send(Lock(b"job", 1)) == LockReply(lock_key(b"job", 1), token=2, acquired=True)
    assert get(feed, lock_key(b"job", 1)).lease == 1


def test_later_lockers_queue_behind_the_holder():
    feed = locking_feed(1, 2)
    feed.send(Lock(b"job", 1))
    assert feed.send(Lock(b"job", 2)) == LockReply(lock_key(b"job", 2), token=2, acquired=False)


def test_asking_again_keeps_the_place_in_the_queue_and_changes_nothing():
    feed = locking_feed(1, 2)
    feed.send(Lock(b"job", 1))
    first = feed.send(Lock(b"job", 2))
    revision = feed.machine.store.revision
    assert feed.send(Lock(b"job", 2)) == first
    assert feed.machine.store.revision == revision


def test_the_lock_passes_in_fifo_order_of_create_revision():
    """The holder is the queued key with the lowest create revision."""
    feed = locking_feed(3, 1, 2)
    for lease in (3, 1, 2):
        feed.send(Lock(b"job", lease))
    assert feed.machine.holds_first(lock_key(b"job", 3))
    feed.send(Unlock(lock_key(b"job", 3)))
    assert feed.send(Lock(b"job", 1)).acquired and not feed.send(Lock(b"job", 2)).acquired
    feed.send(Unlock(lock_key(b"job", 1)))
    assert feed.send(Lock(b"job", 2)).acquired


def test_the_fencing_token_only_grows():
    """A later holder's token is above every earlier holder's, also when the lock is taken again."""
    feed = locking_feed(1, 2)
    first = feed.send(Lock(b"job", 1))
    feed.send(Lock(b"job", 2))
    feed.send(Unlock(first.key))
    second = feed.send(Lock(b"job", 2))
    feed.send(Unlock(second.key))
    third = feed.send(Lock(b"job", 1))
    assert second.acquired and third.acquired
    assert first.token < second.token < third.token


def test_a_holder_whose_lease_ends_loses_the_lock():
    feed = locking_feed(1, 2)
    feed.send(Lock(b"job", 1))
    feed.send(Lock(b"job", 2))
    feed.leader(LeaseExpire(1))
    assert feed.send(Lock(b"job", 2)).acquired
    error(feed.send(Lock(b"job", 1)), "lease_expired", r"lock b'job': lease 1 does not exist")


def test_locks_of_different_names_are_apart():
    feed = locking_feed(1, 2)
    feed.send(Lock(b"a", 1))
    assert feed.send(Lock(b"b", 2)).acquired
    assert feed.send(Lock(b"ab", 2)).acquired


def test_unlock_answers_with_the_revision_and_unlocking_a_released_lock_changes_nothing():
    feed = locking_feed(1)
    reply = feed.send(Lock(b"job", 1))
    assert feed.send(Unlock(reply.key)) == ReleaseReply(2)
    assert feed.send(Unlock(reply.key)) == ReleaseReply(2)
    assert feed.machine.holds_first(reply.key) is None


def test_an_unlocked_key_no_longer_belongs_to_its_lease():
    feed = locking_feed(1)
    reply = feed.send(Lock(b"job", 1))
    feed.send(Unlock(reply.key))
    assert feed.machine.leases.leases[1].keys == set()


@pytest.mark.parametrize("name", [b"", b"a/b", b"x" * (MAX_NAME + 1)])
def test_a_lock_name_must_be_short_and_without_a_slash(name):
    feed = locking_feed(1)
    error(feed.send(Lock(name, 1)), "error", rf"1 to {MAX_NAME} bytes without '/'")
    assert live(feed.machine) == {}


def test_a_lock_name_of_max_length_is_taken():
    assert locking_feed(1).send(Lock(b"x" * MAX_NAME, 1)).acquired


def test_a_lock_under_a_missing_lease_is_refused():
    error(Feed().send(Lock(b"job", 5)), "lease_expired", r"lock b'job': lease 5 does not exist")


def test_a_lock_key_names_the_lease_in_sixteen_hex_digits():
    feed = locking_feed(0xABC)
    assert feed.send(Lock(b"job", 0xABC)).key == LOCK_PREFIX + b"job/0000000000000abc"


# --- elections ----------------------------------------------------------------------------------------


def test_the_first_candidate_is_elected_and_leader_reads_its_value():
    feed = locking_feed(1, 2)
    assert feed.send(Campaign(b"ctl", 1, b"node-1")) == CampaignReply(candidacy_key(b"ctl", 1), 1, True)
    assert feed.send(Campaign(b"ctl", 2, b"node-2")).elected is False
    reply = feed.machine.read(Leader(b"ctl"))
    assert reply == LeaderReply(KeyValue(candidacy_key(b"ctl", 1), b"node-1", 1, 1, 1, 1), 2)


def test_a_resign_hands_the_election_to_the_next_candidate():
    feed = locking_feed(1, 2)
    first = feed.send(Campaign(b"ctl", 1, b"node-1"))
    feed.send(Campaign(b"ctl", 2, b"node-2"))
    assert feed.send(Resign(first.key)) == ReleaseReply(3)
    assert feed.machine.read(Leader(b"ctl")).leader.value == b"node-2"
    assert feed.send(Campaign(b"ctl", 2, b"node-2")).elected


def test_nobody_leads_an_election_nobody_stands_in():
    assert CoreMachine().read(Leader(b"ctl")) == LeaderReply(None, 0)


def test_elections_and_locks_of_one_name_are_apart():
    feed = locking_feed(1, 2)
    feed.send(Lock(b"x", 1))
    assert feed.send(Campaign(b"x", 2, b"v")).elected


def test_a_campaign_retry_keeps_its_place():
    feed = locking_feed(1, 2)
    feed.send(Campaign(b"ctl", 1, b"a"))
    first = feed.send(Campaign(b"ctl", 2, b"b"))
    assert feed.send(Campaign(b"ctl", 2, b"b")) == first

"""keel's own keys: clients read them, and change them only through the typed requests that check them."""

from __future__ import annotations

import pytest

from keel.core.api import CommitMap, CreateBucket, Delete, LeaseGrant, LeaseRevoke, Put, PutReply, Range, RegisterMember, Txn, \
    Unlock
from keel.core.api.system import BUCKET_PREFIX, MAP_KEY, MEMBER_PREFIX, member_key
from keel.data.bucket import BucketSpec
from keel.data.partition_map import PartitionMap, Placement

from .machines import Feed, error, get


@pytest.mark.parametrize("op", [
    Put(b"keel/data/map", b"junk"),
    Put(b"keel/lock/x/0000000000000001", b""),
    Delete(b"keel/buckets/default"),
    Delete(b"k", prefix=True),
    Txn(success=(Put(b"mine", b"1"), Delete(b"keel/data/members/d1"))),
])
def test_a_client_write_under_the_reserved_prefix_is_refused_and_changes_nothing(op):
    feed = Feed()
    feed.send(CreateBucket(BucketSpec("default", "lww").to_bytes()))
    revision = feed.machine.store.revision
    error(feed.send(op), "reserved_key", r"keys under keel/ are keel's own")
    assert feed.machine.store.revision == revision
    assert get(feed, b"mine") is None
    assert get(feed, BUCKET_PREFIX + b"default") is not None


def test_unlock_deletes_only_lock_keys():
    feed = Feed()
    feed.send(Put(b"precious", b"1"))
    error(feed.send(Unlock(b"precious")), "error", r"unlock: key b'precious' is not under keel/lock/")
    assert get(feed, b"precious") is not None


def test_a_registered_member_lives_as_long_as_its_lease():
    feed = Feed()
    lease = feed.send(LeaseGrant(10.0)).id
    assert isinstance(feed.send(RegisterMember("d1", b"info", lease)), PutReply)
    kv = get(feed, member_key("d1"))
    assert (kv.value, kv.lease) == (b"info", lease)
    reply = feed.machine.read(Range(MEMBER_PREFIX, prefix=True))
    assert [kv.key for kv in reply.kvs] == [member_key("d1")]
    feed.send(LeaseRevoke(lease))
    assert get(feed, member_key("d1")) is None


@pytest.mark.parametrize(("op", "message"), [
    (RegisterMember("d1", b"info", 99), "lease 99 does not exist"),
    (RegisterMember("a/b", b"info", 0), "node id 'a/b'"),
    (RegisterMember("", b"info", 0), "node id ''"),
    (RegisterMember("d1", b"x" * 5000, 0), "5000 bytes of info"),
])
def test_a_bad_registration_is_refused_naming_what_is_wrong(op, message):
    feed = Feed()
    answer = feed.send(op)
    assert answer.message.find(message) >= 0, answer
    assert len(feed.machine.store) == 0


def test_a_bucket_is_created_once_and_asking_again_alike_changes_nothing():
    feed = Feed()
    spec = BucketSpec("visits", "lww", {"tombstone_grace": 60}, n=3, r=1, w=3).to_bytes()
    first = feed.send(CreateBucket(spec))
    assert BucketSpec.from_bytes(get(feed, BUCKET_PREFIX + b"visits").value) == \
        BucketSpec("visits", "lww", {"tombstone_grace": 60}, n=3, r=1, w=3)
    assert feed.send(CreateBucket(spec)).revision == first.revision
    error(feed.send(CreateBucket(BucketSpec("visits", "crdt").to_bytes())), "error",
          r"bucket visits exists with other settings")


@pytest.mark.parametrize(("spec", "message"), [
    (b"\xff", "bucket: "),
    (BucketSpec("ok", "lww").to_bytes()[:-1], "bucket: "),
])
def test_a_malformed_bucket_is_refused(spec, message):
    feed = Feed()
    answer = feed.send(CreateBucket(spec))
    assert answer.message.startswith(message), answer
    assert len(feed.machine.store) == 0


def _map(epoch: int, nodes: tuple[str, ...] = ("d1", "d2", "d3")) -> bytes:
    return PartitionMap(epoch=epoch, replicas=3, placements=[Placement(owners=nodes)] * 4).to_bytes()


def test_a_map_commits_only_over_the_revision_its_controller_read():
    feed = Feed()
    first = feed.send(CommitMap(_map(1), expected=0))
    assert first.committed and get(feed, MAP_KEY).value == _map(1)
    stale = feed.send(CommitMap(_map(2), expected=0))  # a second controller that read no map
    assert not stale.committed and stale.mod_revision == first.mod_revision
    assert get(feed, MAP_KEY).value == _map(1)
    assert feed.send(CommitMap(_map(2), expected=first.mod_revision)).committed
    assert PartitionMap.from_bytes(get(feed, MAP_KEY).value).epoch == 2


def test_a_map_that_is_malformed_or_not_newer_is_refused():
    feed = Feed()
    error(feed.send(CommitMap(b"\x01junk", expected=0)), "error", r"partition map")
    assert get(feed, MAP_KEY) is None
    committed = feed.send(CommitMap(_map(3), expected=0))
    error(feed.send(CommitMap(_map(3, ("d1", "d2", "d4")), expected=committed.mod_revision)), "error",
          r"epoch 3 is not above the committed epoch 3")

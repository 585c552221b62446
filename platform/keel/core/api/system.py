"""The keys keel writes for itself, and the requests that write them.

Everything keel keeps in the core for its own use lives under one prefix,
`keel/`: lock queues and election candidates (`keel/lock/`,
`keel/election/`), the data cluster's members (`keel/data/members/<node>`),
its partition map (`keel/data/map`) and the bucket table
(`keel/buckets/<name>`). Clients may read and watch these keys; a `Put`,
`Delete` or `Txn` that would write one is refused with `ReservedKey`, so no
`keel kv put` can corrupt placement. They change only through the typed
requests here (and locks and elections through theirs), each of which
checks what it writes.

Part of the core's client protocol; see `keel.core.api`.
"""

from __future__ import annotations

import attrs

from keel.wire import message

__all__ = [
    "BUCKET_PREFIX", "MAP_KEY", "MEMBER_PREFIX", "RESERVED_PREFIX", "CommitMap", "CommitMapReply", "CreateBucket",
    "DataReady", "DataReadyReply", "RegisterMember", "member_key", "reserved",
]

RESERVED_PREFIX = b"keel/"
MEMBER_PREFIX = b"keel/data/members/"
MAP_KEY = b"keel/data/map"
BUCKET_PREFIX = b"keel/buckets/"
MAX_MEMBER_INFO = 4096  # bytes of a data node's registration (its id, addresses, version)


def reserved(key: bytes, *, prefix: bool = False) -> bool:
    """Whether writing `key` (every key starting with it, when `prefix`) would touch a reserved key."""
    return key.startswith(RESERVED_PREFIX) or (prefix and RESERVED_PREFIX.startswith(key))


def member_key(node: str) -> bytes:
    return MEMBER_PREFIX + node.encode()


@message("core.register_member")
@attrs.frozen
class RegisterMember:
    """A data node joins: `keel/data/members/<node>` holds `info`, under `lease` (gone when the lease is)."""

    node: str
    info: bytes
    lease: int


@message("core.create_bucket")
@attrs.frozen
class CreateBucket:
    """Add a bucket (`keel.data.bucket.Bucket.to_bytes()`); asking again with the same bucket changes nothing."""

    bucket: bytes


@message("core.commit_map")
@attrs.frozen
class CommitMap:
    """Store a new partition map if the map key's mod revision is still `expected` (0: no map yet)."""

    map: bytes
    expected: int


@message("core.commit_map_reply")
@attrs.frozen
class CommitMapReply:
    """Whether the map was committed, and the map key's mod revision after the request."""

    revision: int
    committed: bool
    mod_revision: int


@message("core.data_ready")
@attrs.frozen
class DataReady:
    """A data node holds the records of `partition`, which it joins in the map of `epoch`.

    Not a mutation: the leader's controller takes it, and counts it toward
    the next map (the joiner owns, a leaver goes). A node repeats it until
    a map shows it as owner; any other node answers `NotLeader`.
    """

    node: str
    partition: int
    epoch: int


@message("core.data_ready_reply")
@attrs.frozen
class DataReadyReply:
    counted: bool  # False: a report for another epoch, or a partition the node does not join

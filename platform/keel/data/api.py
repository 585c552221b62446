"""The data cluster's protocol: what a client asks a data node, and what data nodes tell each other.

A client sends `DataCall` to any data node (normally a replica of the key's
partition, found in its cached map) and gets `DataReply` or a typed error.
The node coordinates: a write is applied at one replica (itself when it is
one) and the record it makes is sent to the other replicas as
`ReplicaMerge`, each acknowledged with `ReplicaAck` once durable there; a
read asks the replicas with `ReplicaRead` and merges their
`ReplicaRecord`s. A node that is not a replica of the partition hands the
call to one that is (`Coordinate` / `Coordinated`).

Every message between data nodes carries the sender's hybrid clock
(`clock`, a `Timestamp.to_plain()`) and its map epoch: the receiver moves its
clock past the sender's, and a replica that the sender's map names but its
own (newer) map does not answers `ReplicaRefused` with its epoch, so the
sender learns its map is old. Records and operation arguments travel as
canonical CBOR bytes (`keel.wire.encode_plain`), opaque to the protocol.
"""

from __future__ import annotations

import attrs

from keel.wire import AnyMessage, message

__all__ = [
    "Coordinate", "Coordinated", "DataCall", "DataCallBatch", "DataCallBatchReply", "DataReply", "DataStatusReply",
    "PeerBatch", "ReplicaAck", "ReplicaMerge", "ReplicaRead",
    "ReplicaRecord", "ReplicaRefused", "SyncOpen", "SyncTurn",
]


@message("data.call")
@attrs.frozen
class DataCall:
    """One operation on one key of a bucket; `n`, `r`, `w` of 0 take the bucket's defaults."""

    bucket: str
    key: bytes
    op: str
    args: bytes = b"\x80"  # canonical CBOR of the argument list (empty list by default)
    n: int = 0
    r: int = 0
    w: int = 0
    timeout: float = 2.0  # seconds the coordinator waits for replicas


@message("data.reply")
@attrs.frozen
class DataReply:
    """The answer: a read's result as canonical CBOR (a write's is null), and the map epoch it was served at."""

    result: bytes
    epoch: int
    replicas: int  # how many replicas acknowledged (write) or answered (read) in time


@message("data.coordinate")
@attrs.frozen
class Coordinate:
    """A node that is not a replica hands a client's call to one that is."""

    id: int
    call: DataCall
    epoch: int


@message("data.coordinated")
@attrs.frozen
class Coordinated:
    """The answer to `Coordinate`: a `DataReply` or an `ErrorReply`."""

    id: int
    reply: AnyMessage


@message("data.replica_merge")
@attrs.frozen
class ReplicaMerge:
    """Merge `record` into your copy of the key; acknowledge once durable (`id` 0: no answer wanted)."""

    id: int
    bucket: str
    partition: int
    key: bytes
    record: bytes
    clock: tuple[int, int, str]
    epoch: int


@message("data.replica_ack")
@attrs.frozen
class ReplicaAck:
    id: int
    clock: tuple[int, int, str]


@message("data.replica_read")
@attrs.frozen
class ReplicaRead:
    id: int
    bucket: str
    partition: int
    key: bytes
    clock: tuple[int, int, str]
    epoch: int


@message("data.replica_record")
@attrs.frozen
class ReplicaRecord:
    """A replica's copy of a key (empty bytes: it holds none)."""

    id: int
    record: bytes
    clock: tuple[int, int, str]


@message("data.replica_refused")
@attrs.frozen
class ReplicaRefused:
    """This node is not a replica of the partition in its map of `epoch` (or the request was malformed)."""

    id: int
    epoch: int
    reason: str


@message("data.status")
@attrs.frozen
class DataStatusReply:
    """What `keel status` shows of a data node."""

    epoch: int  # the partition map it follows (0: none yet)
    partitions: tuple[int, ...]  # those whose records it keeps (owner or joiner)
    records: int  # records in its file
    buckets: tuple[str, ...]
    members: tuple[str, ...]  # the data nodes registered in the core, as it last heard


@message("data.sync_open")
@attrs.frozen
class SyncOpen:
    """Start an anti-entropy exchange of one partition of one bucket (`keel.data.tree_sync`)."""

    id: int
    bucket: str
    partition: int
    epoch: int
    begin: AnyMessage  # a SyncBegin
    clock: tuple[int, int, str]


@message("data.sync_turn")
@attrs.frozen
class SyncTurn:
    """The next message of exchange `id`; `to_initiator` tells which side's exchange it belongs to."""

    id: int
    to_initiator: bool
    step: AnyMessage  # a SyncStep
    clock: tuple[int, int, str]


@message("data.call_batch")
@attrs.frozen
class DataCallBatch:
    """Several `DataCall`s to one node in one request (a client's calls that started together)."""

    calls: tuple[DataCall, ...]


@message("data.call_batch_reply")
@attrs.frozen
class DataCallBatchReply:
    """One answer per call of a `DataCallBatch`, in order: a `DataReply` or an `ErrorReply`."""

    replies: tuple[AnyMessage, ...]


@message("data.peer_batch")
@attrs.frozen
class PeerBatch:
    """The messages one poll of a data node sends one peer, in one frame, in order."""

    messages: tuple[AnyMessage, ...]

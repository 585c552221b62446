"""The store contract: what a store plugin decides about data, and what the host does with it.

A store owns the **semantics** of a bucket's records; the host owns the
**mechanics** (placement, quorums, read repair, hinted handoff,
anti-entropy, durability). `StorePlugin.create(options)` builds a `Store`,
a plain sans-I/O object (no I/O, no clock, no randomness of its own):

- `operations` names what a client may ask, each a `WRITE` (changes a
  record) or a `READ` (answered from a record). LWW: put, delete (writes),
  get (read); a CRDT store: incr, add, remove, … and value, members, ….
- `check(op)` refuses an operation whose arguments are wrong, with a
  `KeelError` whose one line names the operation and the argument, before
  anything is stamped or sent.
- `apply(record, op, ctx)` performs a write at one replica: `record` is what
  that replica holds for the key (None if nothing), `ctx` carries a hybrid
  logical timestamp above every timestamp that replica has seen and the
  replica's node id. It returns the new record; the host stores
  `merge(record, new)` there and sends `new` to the other replicas, which
  merge it into theirs. (A CRDT counter needs the replica's own count to
  add to, which is why a write is applied at a replica and not at the
  coordinator.)
- `merge(a, b)` joins two replicas' records: commutative, associative and
  idempotent, so replicas that received the same records in any order,
  any number of times, hold the same record. `keel.conformance.store_laws`
  checks these laws for any store.
- `read(record, op)` is what a read returns from a (merged) record; None
  when the key holds nothing (absent, or deleted).
- `check_record(record)` refuses a record that came from disk or a peer
  and is not one this store makes (ValueError naming what is wrong), so a
  damaged or hostile record is dropped before `merge` sees it.
- `examples` are write operations the conformance suite draws from to
  test the store's laws and its replication (a few of each kind, with
  small arguments so that draws collide).
- `collectable(record, now)`: the record is a tombstone that every replica
  has had time to learn of (the store's grace period has passed since
  `now`'s wall time), so the host may drop it. A replica that missed the
  delete for longer than that may bring the old value back through
  anti-entropy: the grace period must exceed the longest outage a replica
  is expected to come back from, as Cassandra's gc_grace_seconds must.

Records are plain data (int, float, bool, str, bytes, None, list, dict):
the host encodes them as canonical CBOR (`keel.wire.encode_plain`) to store,
hash and send them, and hands them back decoded, with lists where tuples
went in. Two records that mean the same must be equal as data (a set kept
as a sorted list, say): replicas compare records by the hash of their
bytes, so equal meaning in different shapes would never converge.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs

from keel import wire
from keel.data.hlc import Timestamp
from keel.errors import UnsupportedOperation

__all__ = ["ApplyContext", "OpKind", "Operation", "Store", "UnsupportedOperation", "decode_record", "encode_record"]


class OpKind(enum.Enum):
    """Whether an operation changes a record (and is replicated) or reads one."""

    WRITE = "write"
    READ = "read"


@attrs.frozen
class Operation:
    """One operation a client asks of a key: its name and its arguments, plain data."""

    name: str
    args: tuple[Any, ...] = attrs.field(default=(), converter=tuple)


@attrs.frozen
class ApplyContext:
    """What a replica knows when it applies a write."""

    stamp: Timestamp  # above every timestamp this replica has seen; unique to this write
    node: str  # the replica applying it


class Store(Protocol):
    """A bucket's semantics, built by `StorePlugin.create(options)`; see the module docstring."""

    operations: Mapping[str, OpKind]
    examples: Sequence[Operation]

    def check(self, op: Operation) -> None:
        """Refuse `op` if this store cannot perform it.

        Raises:
            UnsupportedOperation: unknown name or wrong arguments; the
                message names the operation and what is wrong.
        """

    def apply(self, record: Any | None, op: Operation, ctx: ApplyContext) -> Any:
        """The record a write makes at the replica that holds `record`."""

    def check_record(self, record: Any) -> None:
        """Refuse a record from disk or a peer that this store would never make.

        Raises:
            ValueError: `record` is not of this store's shape; the message
                says what is wrong.
        """

    def merge(self, a: Any, b: Any) -> Any:
        """Two replicas' records joined: commutative, associative, idempotent."""

    def read(self, record: Any | None, op: Operation) -> Any:
        """What the read `op` returns from `record` (None: the key holds nothing)."""

    def collectable(self, record: Any, now: Timestamp) -> bool:
        """Whether `record` is a tombstone old enough, at `now`, to be dropped."""


def encode_record(record: Any) -> bytes:
    """A record's canonical bytes, as stored, hashed and sent.

    Raises:
        TypeError: the store made a record that is not plain data (a store bug).
    """
    return wire.encode_plain(record)


def decode_record(data: bytes, what: str) -> Any:
    """A record from bytes that came from disk or a peer; `what` names the source in errors.

    Raises:
        WireError: the bytes are not plain CBOR.
    """
    return wire.decode_plain(data, what)

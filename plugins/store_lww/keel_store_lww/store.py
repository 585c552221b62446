"""Last-writer-wins records: every write is stamped, the highest stamp is the value.

A record is `[stamp, value]`: `stamp` the hybrid logical timestamp of the
write that made it (`Timestamp.to_plain()`: wall µs, logical, node id) and
`value` the bytes put, or None for a delete (a tombstone). Merging two
records keeps the one with the higher stamp; stamps are ordered by wall
time, then logical count, then node id, so two writes at the same instant
on different replicas are still ordered, the same way everywhere. Two
records with one stamp are the same write (a node never issues a stamp
twice), so merge is a choice between the two and commutative, associative
and idempotent as a maximum is.

What last-writer-wins gives up: of two concurrent writes, one is lost,
silently, and "last" means the highest clock, not the later in real time
when clocks disagree (the hybrid clock bounds how far ahead a peer may
be). Use a CRDT store when concurrent updates must all count, and the core
when a write must depend on what it replaces (compare-and-set).
"""

from __future__ import annotations

from typing import Any

from keel.data.hlc import Timestamp
from keel.data.store import ApplyContext, OpKind, Operation, UnsupportedOperation

from keel_store_lww.options import LwwOptions

__all__ = ["MAX_VALUE_BYTES", "LwwStore", "create"]

MAX_VALUE_BYTES = 1 * 2**20  # one value; the data cluster is for many small records, not blobs

_OPERATIONS = {"put": OpKind.WRITE, "delete": OpKind.WRITE, "get": OpKind.READ}
_ARITY = {"put": 1, "delete": 0, "get": 0}


class LwwStore:
    """One value per key; the write with the highest hybrid timestamp wins."""

    operations = _OPERATIONS
    examples = (Operation("put", (b"a",)), Operation("put", (b"b",)), Operation("put", (b"c",)), Operation("delete"))

    def __init__(self, options: LwwOptions) -> None:
        self.options = options
        self._grace_us = int(options.tombstone_grace * 1_000_000)

    def check(self, op: Operation) -> None:
        if op.name not in _OPERATIONS:
            raise UnsupportedOperation(f"lww: no operation {op.name!r} (it has {', '.join(_OPERATIONS)})")
        if len(op.args) != _ARITY[op.name]:
            raise UnsupportedOperation(f"lww: {op.name} takes {_ARITY[op.name]} argument(s), not {len(op.args)}")
        if op.name == "put":
            (value,) = op.args
            if not isinstance(value, bytes):
                raise UnsupportedOperation(f"lww: put's value must be bytes, not {type(value).__name__}")
            if len(value) > MAX_VALUE_BYTES:
                raise UnsupportedOperation(f"lww: put's value of {len(value)} bytes exceeds {MAX_VALUE_BYTES}")

    def apply(self, record: Any | None, op: Operation, ctx: ApplyContext) -> list[Any]:
        # The replica's own record does not matter: the new stamp is above every
        # stamp this replica has seen, so the write wins here, and merge decides elsewhere.
        value = op.args[0] if op.name == "put" else None
        return [ctx.stamp.to_plain(), value]

    def check_record(self, record: Any) -> None:
        if not (isinstance(record, list) and len(record) == 2):
            raise ValueError(f"an lww record is [stamp, value], not {_short(record)}")
        Timestamp.from_plain(record[0])
        if not (record[1] is None or isinstance(record[1], bytes)):
            raise ValueError(f"an lww value is bytes or None (deleted), not {type(record[1]).__name__}")

    def merge(self, a: Any, b: Any) -> Any:
        return a if _key(a) >= _key(b) else b

    def read(self, record: Any | None, op: Operation) -> bytes | None:
        return None if record is None else record[1]

    def collectable(self, record: Any, now: Timestamp) -> bool:
        return record[1] is None and now.wall - record[0][0] > self._grace_us

    def stamp(self, record: Any) -> Timestamp:
        """The timestamp of the write that made `record`."""
        return Timestamp.from_plain(record[0])


def _key(record: Any) -> tuple[Any, ...]:
    # Equal stamps mean the same write; the value only keeps the choice total
    # (and the merge commutative) should a buggy peer ever send two.
    wall, logical, node = record[0]
    value = record[1]
    return (wall, logical, node, value is not None, value or b"")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def create(options: LwwOptions | None = None) -> LwwStore:
    """The store of an LWW bucket with `options` (the defaults when None)."""
    return LwwStore(options if options is not None else LwwOptions())

"""The event trace: everything that happened in a simulation, in order, and its hash.

Each record is reduced to plain CBOR values and hashed with SHA-256 over
canonical CBOR, so two runs have equal hashes exactly when they did the same
things at the same virtual times. The reduction never lets Python's set or
dict iteration order (or an object's address) reach the hash: sets and maps
are sorted by their encoded bytes, attrs instances become their class name
and fields, and any other object is refused.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterator
from typing import Any

import attrs
import cbor2

__all__ = ["Kind", "Record", "Trace", "plain"]

_SCALARS = frozenset({bool, int, float, str, bytes, type(None)})
_FIELDS: dict[type, tuple[str, ...]] = {}  # attrs class -> field names; traces reduce thousands of instances


class Kind(enum.StrEnum):
    """What a trace record says happened."""

    START = "start"  # a node was built (first start or restart); data: (incarnation, durable records)
    TICK = "tick"  # data: the node-local time handed to tick()
    PERSIST = "persist"  # data: (records written, records an fsync must cover)
    SYNC = "sync"  # an fsync completed; data: records now durable
    SEND = "send"  # a message left node for peer
    DROP = "drop"  # a message was dropped; detail: why
    DELIVER = "deliver"  # a message from peer reached node (each copy)
    EVENT = "event"  # a node reported an event for checkers
    CRASH = "crash"  # data: records lost
    FAULT = "fault"  # a scheduled fault applied; detail "noop" when it changed nothing
    CALL = "call"  # a callback scheduled with Simulation.at ran; detail: its name


@attrs.frozen
class Record:
    """One thing that happened at one virtual time."""

    time: float  # virtual seconds
    kind: Kind
    node: str = ""  # the node it happened on (the sender for SEND/DROP, the receiver for DELIVER)
    peer: str = ""  # the other end of a message
    data: Any = None  # the message, event or fault; plain data or attrs instances
    detail: str = ""  # a reason or note

    def __str__(self) -> str:
        if self.kind is Kind.DELIVER:
            where = f"{self.peer}->{self.node}"
        elif self.peer:
            where = f"{self.node}->{self.peer}"
        else:
            where = self.node
        note = f" ({self.detail})" if self.detail else ""
        return f"{self.time:.6f} {self.kind.value:<7} {where:<12} {self.data!r}{note}"


def _canonical(value: Any) -> bytes:
    return cbor2.dumps(value, canonical=True)


def plain(value: Any) -> Any:
    """Reduce `value` to plain CBOR data whose encoding does not depend on iteration order.

    Raises:
        TypeError: the value holds an object that is neither plain data,
            a tuple/list/set/dict of them, an enum nor an attrs instance.
    """
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is tuple or kind is list:
        return [plain(v) for v in value]
    names = _FIELDS.get(kind)
    if names is not None:
        return [kind.__qualname__, {name: plain(getattr(value, name)) for name in names}]
    return _plain_rare(value)


def _plain_rare(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return plain(value.value)
    for scalar in (bool, int, float, str, bytes):  # a subclass travels as its scalar
        if isinstance(value, scalar):
            return scalar(value)
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((plain(v) for v in value), key=_canonical)
    if isinstance(value, dict):
        return sorted(([plain(k), plain(v)] for k, v in value.items()), key=lambda kv: _canonical(kv[0]))
    if attrs.has(type(value)):
        _FIELDS[type(value)] = tuple(f.name for f in attrs.fields(type(value)))
        return plain(value)
    raise TypeError(f"{type(value).__qualname__} cannot go into a simulation trace: use plain data or attrs classes")


class Trace:
    """The records of one simulation, hashed incrementally on demand."""

    def __init__(self) -> None:
        self._records: list[Record] = []
        self._hasher = hashlib.sha256()
        self._hashed = 0  # records already fed to the hasher

    def add(self, record: Record) -> None:
        self._records.append(record)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self._records)

    def __getitem__(self, index: int) -> Record:
        return self._records[index]

    def since(self, start: int) -> list[Record]:
        """The records from index `start` on (a checker's cursor)."""
        return self._records[start:]

    def of(self, kind: Kind) -> list[Record]:
        """Every record of one kind, in order."""
        return [r for r in self._records if r.kind is kind]

    def hash(self) -> str:
        """SHA-256 (hex) over the canonical CBOR of every record so far."""
        for record in self._records[self._hashed :]:
            row = [record.time, record.kind.value, record.node, record.peer, plain(record.data), record.detail]
            self._hasher.update(_canonical(row))
        self._hashed = len(self._records)
        return self._hasher.hexdigest()

    def tail(self, count: int) -> str:
        """The last `count` records, one a line, for failure messages."""
        return "\n".join(str(r) for r in self._records[-count:])

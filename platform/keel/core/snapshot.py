"""A snapshot of the core's state machine, as one wire message.

The snapshot is a registered message (`core.snapshot`), so it is encoded
canonically (equal states give equal bytes) and decoded with every field
checked: a damaged or foreign snapshot fails as `WireError`, never as a
half-restored machine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from keel import wire
from keel.core.api import Event, KeyValue
from keel.core.leases import LeaseTable
from keel.core.sessions import SessionTable
from keel.core.store import KeyStore
from keel.errors import WireError
from keel.wire import AnyMessage, message

if TYPE_CHECKING:
    from keel.core.machine import CoreMachine

__all__ = ["MachineSnapshot", "decode_snapshot", "encode_snapshot"]


@attrs.frozen
class LeaseRecord:
    id: int
    ttl: float
    keys: tuple[bytes, ...]


@attrs.frozen
class SessionRecord:
    client: str
    acked: int
    last_used: float
    answers: tuple[tuple[int, AnyMessage], ...]


@message("core.snapshot")
@attrs.frozen(kw_only=True)
class MachineSnapshot:
    index: int
    digest: bytes
    revision: int
    compacted: int
    keys: tuple[KeyValue, ...]
    history: tuple[Event, ...]
    next_lease: int
    leases: tuple[LeaseRecord, ...]
    log_time: float
    sessions: tuple[SessionRecord, ...]


def encode_snapshot(machine: CoreMachine) -> bytes:
    revision, compacted, keys, history = machine.store.dump()
    next_lease, leases = machine.leases.dump()
    log_time, sessions = machine.sessions.dump()
    return wire.encode(MachineSnapshot(
        index=machine.index,
        digest=machine.digest,
        revision=revision,
        compacted=compacted,
        keys=tuple(keys),
        history=tuple(history),
        next_lease=next_lease,
        leases=tuple(LeaseRecord(i, ttl, tuple(k)) for i, ttl, k in leases),
        log_time=log_time,
        sessions=tuple(SessionRecord(c, acked, used, tuple(answers)) for c, acked, used, answers in sessions),
    ))


def decode_snapshot(machine: CoreMachine, blob: bytes) -> None:
    """Replace `machine`'s state with the snapshot in `blob`.

    Raises:
        WireError: `blob` is not a core snapshot.
    """
    snap = wire.decode(blob)
    if not isinstance(snap, MachineSnapshot):
        raise WireError(f"core snapshot: found {type(snap).__name__}")
    machine.index, machine.digest = snap.index, snap.digest
    machine.store = KeyStore.load(snap.revision, snap.compacted, list(snap.keys), list(snap.history))
    machine.leases = LeaseTable()
    machine.leases.load(snap.next_lease, [(r.id, r.ttl, list(r.keys)) for r in snap.leases])
    machine.sessions = SessionTable(max_sessions=machine.sessions.max_sessions,
                                    max_pending=machine.sessions.max_pending,
                                    idle_expiry=machine.sessions.idle_expiry)
    machine.sessions.load(snap.log_time, [(r.client, r.acked, r.last_used, list(r.answers)) for r in snap.sessions])

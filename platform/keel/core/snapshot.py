"""A snapshot of the core's state machine: canonical CBOR of plain arrays, checked on the way in.

The keyspace, its history, the leases and the sessions travel as plain
CBOR arrays rather than as registered messages: a snapshot holds every
key and up to `HISTORY_LIMIT` events, and the message codec's per-field
checks would cost a node hundreds of milliseconds per snapshot, long
enough to miss heartbeats. Encoding is canonical (equal states give equal
bytes); decoding checks every value's type and raises `WireError` naming
where it broke, so a damaged snapshot never half-restores a machine.
Session answers, being messages, travel wire-encoded.

    [FORMAT, index, digest, revision, compacted,
     keys:     [[key, value, create, mod, version, lease], ...],
     history:  [[kind, key, value, create, mod, version, lease], ...],   kind 0 put, 1 delete
     next_lease, leases: [[id, ttl, granted, [key, ...]], ...],
     log_time, sessions: [[client, acked, last_used, [[seq, answer], ...]], ...],
     forgotten: [[client, why], ...]]                                     why 0 idle, 1 evicted
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import cbor2

from keel import wire
from keel.core.api import Event, KeyValue
from keel.core.leases import LeaseTable
from keel.core.sessions import EVICTED, IDLE, SessionTable
from keel.core.store import KeyStore
from keel.errors import WireError

if TYPE_CHECKING:
    from keel.core.machine import CoreMachine

__all__ = ["FORMAT", "Capture", "capture", "decode_snapshot", "encode_snapshot"]

FORMAT = 3  # bump when the layout changes (2: leases carry the index of their grant; 3: forgotten sessions)
_KINDS = ("put", "delete")
_LENGTHS = {2: 11, FORMAT: 12}  # the formats this code reads, and how many fields each has


@attrs.frozen(kw_only=True)
class Capture:
    """The machine's state as immutable pieces (fresh lists of frozen records), safe to encode in another thread."""

    index: int
    digest: bytes
    revision: int
    compacted: int
    keys: list[KeyValue]
    history: list[Event]
    next_lease: int
    leases: list[tuple[int, float, int, list[bytes]]]  # (id, ttl, granted, keys)
    log_time: float
    sessions: list[tuple[str, int, float, list[tuple[int, Any]]]]  # (client, acked, last used, answers)
    forgotten: list[tuple[str, int]]  # (client, why), the sessions forgotten last


def capture(machine: CoreMachine) -> Capture:
    """The machine's state now, cheaply (no encoding); `encode_snapshot` may run later, in any thread."""
    revision, compacted, keys, history = machine.store.dump()
    next_lease, leases = machine.leases.dump()
    log_time, sessions, forgotten = machine.sessions.dump()
    return Capture(index=machine.index, digest=machine.digest, revision=revision, compacted=compacted, keys=keys,
                   history=history, next_lease=next_lease, leases=leases, log_time=log_time, sessions=sessions,
                   forgotten=forgotten)


def encode_snapshot(state: Capture) -> bytes:
    """Canonical CBOR of a `capture`."""
    index, digest, revision, compacted = state.index, state.digest, state.revision, state.compacted
    keys, history, next_lease, leases = state.keys, state.history, state.next_lease, state.leases
    log_time, sessions, forgotten = state.log_time, state.sessions, state.forgotten
    return cbor2.dumps([
        FORMAT, index, digest, revision, compacted,
        [[kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease] for kv in keys],
        [[_KINDS.index(e.kind), e.kv.key, e.kv.value, e.kv.create_revision, e.kv.mod_revision, e.kv.version,
          e.kv.lease] for e in history],
        next_lease,
        [[lease_id, float(ttl), granted, list(lease_keys)] for lease_id, ttl, granted, lease_keys in leases],
        float(log_time),
        [[client, acked, float(used), [[seq, wire.encode(answer)] for seq, answer in answers]]
         for client, acked, used, answers in sessions],
        [[client, why] for client, why in forgotten],
    ], canonical=True)


def decode_snapshot(machine: CoreMachine, blob: bytes) -> None:
    """Replace `machine`'s state with the snapshot in `blob`.

    Raises:
        WireError: `blob` is not a core snapshot of this format (naming where).
    """
    try:
        doc = cbor2.loads(blob)
    except Exception as exc:  # cbor2 raises several types for bad bytes
        raise WireError(f"core snapshot: not CBOR: {exc}") from None
    top = _array(doc, "top level")
    if not top or type(top[0]) is not int or top[0] not in _LENGTHS:
        raise WireError(f"core snapshot: format {top[0] if top else None!r}, this keel reads formats "
                        f"{', '.join(map(str, _LENGTHS))}")
    top = _array(top, "top level", _LENGTHS[top[0]]) + [[]]  # format 2 had no forgotten sessions
    index, digest, revision, compacted = (_int(top[1], "index"), _bytes(top[2], "digest"), _int(top[3], "revision"),
                                          _int(top[4], "compacted"))
    keys = [_key(row, f"keys[{i}]") for i, row in enumerate(_array(top[5], "keys"))]
    history = [_event(row, f"history[{i}]") for i, row in enumerate(_array(top[6], "history"))]
    leases = [_lease(row, f"leases[{i}]") for i, row in enumerate(_array(top[8], "leases"))]
    sessions = [_session(row, f"sessions[{i}]") for i, row in enumerate(_array(top[10], "sessions"))]
    forgotten = [_forgotten(row, f"forgotten[{i}]") for i, row in enumerate(_array(top[11], "forgotten"))]
    machine.index, machine.digest = index, digest
    machine.store = KeyStore.load(revision, compacted, keys, history)
    machine.leases = LeaseTable()
    machine.leases.load(_int(top[7], "next_lease"), leases)
    machine.sessions = type(machine.sessions)(max_sessions=machine.sessions.max_sessions,
                                    window=machine.sessions.window,
                                    idle_expiry=machine.sessions.idle_expiry)
    machine.sessions.load(_float(top[9], "log_time"), sessions, forgotten)


def _key(row: Any, where: str) -> KeyValue:
    key, value, create, mod, version, lease = _array(row, where, 6)
    return KeyValue(_bytes(key, where), _bytes(value, where), _int(create, where), _int(mod, where),
                    _int(version, where), _int(lease, where))


def _event(row: Any, where: str) -> Event:
    kind, *kv = _array(row, where, 7)
    if type(kind) is not int or not 0 <= kind < len(_KINDS):
        raise WireError(f"core snapshot: {where}: event kind {kind!r}")
    return Event(_KINDS[kind], _key(kv, where))


def _lease(row: Any, where: str) -> tuple[int, float, int, list[bytes]]:
    lease_id, ttl, granted, keys = _array(row, where, 4)
    return (_int(lease_id, where), _float(ttl, where), _int(granted, where),
            [_bytes(k, where) for k in _array(keys, where)])


def _session(row: Any, where: str) -> tuple[str, int, float, list[tuple[int, Any]]]:
    client, acked, used, answers = _array(row, where, 4)
    if type(client) is not str:
        raise WireError(f"core snapshot: {where}: client {client!r} is not a string")
    pairs = []
    for i, pair in enumerate(_array(answers, where)):
        seq, answer = _array(pair, f"{where}.answers[{i}]", 2)
        pairs.append((_int(seq, where), wire.decode(_bytes(answer, where))))
    return client, _int(acked, where), _float(used, where), pairs


def _forgotten(row: Any, where: str) -> tuple[str, int]:
    client, why = _array(row, where, 2)
    if type(client) is not str or why not in (IDLE, EVICTED) or type(why) is not int:
        raise WireError(f"core snapshot: {where}: {row!r:.60} is not a forgotten session")
    return client, why


def _array(value: Any, where: str, length: int | None = None) -> list[Any]:
    if type(value) is not list or (length is not None and len(value) != length):
        expected = f"an array of {length}" if length is not None else "an array"
        raise WireError(f"core snapshot: {where}: expected {expected}, got {type(value).__name__}")
    return value


def _typed(kind: type, name: str) -> Callable[[Any, str], Any]:
    def check(value: Any, where: str) -> Any:
        if type(value) is not kind:
            raise WireError(f"core snapshot: {where}: {value!r:.40} is not {name}")
        return value

    return check


_int = _typed(int, "an integer")
_bytes = _typed(bytes, "bytes")
_float = _typed(float, "a float")

"""What the keyspace holds: keys as they stand, and changes to them.

Part of the core's client protocol; see `keel.core.api`.
"""

from __future__ import annotations

import attrs


__all__ = ["Event", "KeyValue"]


# --- what the keyspace holds ---------------------------------------------------


@attrs.frozen
class KeyValue:
    """A key as it stands at some revision."""

    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int  # puts since creation; 0 only in a delete event
    lease: int = 0  # the lease it is attached to; 0: none


@attrs.frozen
class Event:
    """A change to one key: `kind` "put" (kv after it) or "delete" (kv.mod_revision = the delete's revision)."""

    kind: str
    kv: KeyValue

"""Reading and changing keys: put, range, delete, transactions, compaction.

Part of the core's client protocol; see `keel.core.api`.
"""

from __future__ import annotations

import attrs

from keel.core.api.keys import KeyValue
from keel.wire import AnyMessage, message

__all__ = ["Compact", "CompactReply", "Compare", "Delete", "DeleteReply", "Put", "PutReply", "Range", "RangeReply", "Txn", "TxnReply"]


# --- key-value ----------------------------------------------------------------------


@message("core.put")
@attrs.frozen
class Put:
    """Set `key` to `value` (a mutation)."""

    key: bytes
    value: bytes
    lease: int = 0  # attach to this lease (it must exist); 0 detaches
    prev_kv: bool = False  # return the key as it was before


@message("core.put_reply")
@attrs.frozen
class PutReply:
    """The revision the put made, and the key before it if `prev_kv` asked."""

    revision: int
    prev: KeyValue | None = None


@message("core.range")
@attrs.frozen
class Range:
    """Read one key, or every key starting with `key` when `prefix`."""

    key: bytes
    prefix: bool = False
    limit: int = 0  # at most this many keys (0: all), in key order
    keys_only: bool = False  # values come back empty
    serializable: bool = False  # answer from this node's state without a read barrier (may be stale)


@message("core.range_reply")
@attrs.frozen
class RangeReply:
    """The keys found, in key order, at keyspace revision `revision`."""

    revision: int
    kvs: tuple[KeyValue, ...]
    count: int  # keys in the range, also those past `limit`
    more: bool  # `limit` cut the answer short


@message("core.delete")
@attrs.frozen
class Delete:
    """Delete `key`, or every key under it with `prefix` (a mutation)."""

    key: bytes
    prefix: bool = False
    prev_kv: bool = False


@message("core.delete_reply")
@attrs.frozen
class DeleteReply:
    """The revision the delete made (unchanged if nothing was deleted) and how many keys went."""

    revision: int
    deleted: int
    prev: tuple[KeyValue, ...] = ()


@message("core.compare")
@attrs.frozen
class Compare:
    """One condition of a `Txn`: `target` of `key` `op` the operand.

    `target` is "value" (compared with `value`), or "version", "create",
    "mod" or "lease" (compared with `number`). An absent key has version,
    create and mod revision 0; a value compare on it fails whatever the
    operator (as in etcd): test absence with `version == 0`.
    """

    key: bytes
    target: str
    op: str  # "==", "!=", "<", ">"
    value: bytes = b""
    number: int = 0


@message("core.txn")
@attrs.frozen
class Txn:
    """If every compare holds, run `success`, else `failure`: all at one revision."""

    compare: tuple[Compare, ...] = ()
    success: tuple[AnyMessage, ...] = ()  # Put, Delete, Range
    failure: tuple[AnyMessage, ...] = ()


@message("core.txn_reply")
@attrs.frozen
class TxnReply:
    """Which branch ran, its answers, and the revision the transaction made."""

    revision: int
    succeeded: bool
    replies: tuple[AnyMessage, ...]  # one per operation run, in order


@message("core.compact")
@attrs.frozen
class Compact:
    """Forget the event history before `revision`; watches from earlier fail with `Compacted`."""

    revision: int


@message("core.compact_reply")
@attrs.frozen
class CompactReply:
    """The keyspace revision when the compaction applied."""

    revision: int

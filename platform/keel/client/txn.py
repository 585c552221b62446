"""Building transactions: compares and operations, from text or bytes.

```python
await c.txn(
    compare=[compare_value("config", "==", "v1"), absent("owner")],
    success=[put_op("config", "v2"), put_op("owner", "me")],
    failure=[get_op("config")],
)
```
A compare of a key's value against an absent key never holds, except
with "!="; `absent(key)` (version == 0) asks for absence directly.
"""

from __future__ import annotations

from keel.client.encoding import BytesLike, as_bytes, lease_id
from keel.core.api import Compare, Delete, Put, Range

__all__ = [
    "OPERATORS",
    "absent",
    "compare_create",
    "compare_lease",
    "compare_mod",
    "compare_value",
    "compare_version",
    "delete_op",
    "get_op",
    "put_op",
]

OPERATORS = ("==", "!=", "<", ">")


def _operator(op: str) -> str:
    if op not in OPERATORS:
        raise ValueError(f"compare operator {op!r} is not one of {', '.join(OPERATORS)}")
    return op


def _number(number: int, what: str) -> int:
    if isinstance(number, bool) or not isinstance(number, int):
        raise TypeError(f"compare {what}: {number!r} is not an int")
    return number


def compare_value(key: BytesLike, op: str, value: BytesLike) -> Compare:
    """The key's value `op` `value` (bytes order for "<" and ">")."""
    return Compare(as_bytes(key, "key"), "value", _operator(op), value=as_bytes(value))


def compare_version(key: BytesLike, op: str, version: int) -> Compare:
    """The key's version (puts since its creation; 0 when absent) `op` `version`."""
    return Compare(as_bytes(key, "key"), "version", _operator(op), number=_number(version, "version"))


def compare_create(key: BytesLike, op: str, revision: int) -> Compare:
    """The key's create revision (0 when absent) `op` `revision`."""
    return Compare(as_bytes(key, "key"), "create", _operator(op), number=_number(revision, "revision"))


def compare_mod(key: BytesLike, op: str, revision: int) -> Compare:
    """The key's last modification revision (0 when absent) `op` `revision`."""
    return Compare(as_bytes(key, "key"), "mod", _operator(op), number=_number(revision, "revision"))


def compare_lease(key: BytesLike, op: str, lease: object) -> Compare:
    """The key's lease id (0: none) `op` `lease` (an id or a `Lease`)."""
    return Compare(as_bytes(key, "key"), "lease", _operator(op), number=lease_id(lease))


def absent(key: BytesLike) -> Compare:
    """The key does not exist."""
    return compare_version(key, "==", 0)


def put_op(key: BytesLike, value: BytesLike, *, lease: object = None, prev_kv: bool = False) -> Put:
    """Set `key` to `value`, attached to `lease` (an id or a `Lease`) if given."""
    return Put(as_bytes(key, "key"), as_bytes(value), lease_id(lease), prev_kv)


def delete_op(key: BytesLike, *, prefix: bool = False, prev_kv: bool = False) -> Delete:
    """Delete `key`, or every key starting with it when `prefix`."""
    return Delete(as_bytes(key, "key"), prefix, prev_kv)


def get_op(key: BytesLike, *, prefix: bool = False, limit: int = 0, keys_only: bool = False) -> Range:
    """Read `key`, or the keys starting with it when `prefix`, inside the transaction."""
    return Range(as_bytes(key, "key"), prefix=prefix, limit=limit, keys_only=keys_only)

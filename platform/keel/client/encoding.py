"""How keys, values and names given by a user become the bytes the core stores.

The core's keyspace holds bytes; people mostly write text. A `str` is
encoded as UTF-8, bytes-like values pass unchanged, anything else is a
mistake of the calling code (`TypeError`), caught before a request leaves.
"""

from __future__ import annotations

__all__ = ["BytesLike", "as_bytes", "lease_id"]

BytesLike = str | bytes | bytearray | memoryview


def as_bytes(value: BytesLike, what: str = "value") -> bytes:
    """`value` as bytes: a `str` encoded as UTF-8.

    Raises:
        TypeError: `value` is neither text nor bytes (`what` names it).
    """
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"{what}: {type(value).__name__} is neither str nor bytes")


def lease_id(lease: object) -> int:
    """The id of `lease`: an int, or anything with an int `id` (a `Lease`); None and 0 mean no lease.

    Raises:
        TypeError: `lease` is none of those.
    """
    if lease is None:
        return 0
    number = getattr(lease, "id", lease)
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise TypeError(f"lease: {lease!r} is not a lease id (an int >= 0) nor a Lease")
    return number

"""Buckets: named sets of keys with one store and their replication defaults.

The core keeps the bucket table under `keel/buckets/<name>` (written only by
`CreateBucket`); data nodes and clients follow it by watch. A bucket names
its store plugin and that plugin's options, and the defaults of a request's
replication: `n` replicas of each key (at most the cluster's replication
factor), `w` of which acknowledge a write and `r` of which answer a read.
With `r + w > n` a read that starts after a write was acknowledged overlaps
it on at least one replica and sees it (or something newer).
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from keel import wire
from keel.errors import KeelError, WireError

__all__ = ["DEFAULT_BUCKET", "MAX_REPLICAS", "BucketSpec", "check_bucket_name"]

DEFAULT_BUCKET = "default"
MAX_REPLICAS = 7
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}\Z")


def check_bucket_name(name: object) -> str:
    """`name` if it can name a bucket.

    Raises:
        KeelError: not 1 to 63 characters of a-z, 0-9, '_', '.', '-' starting with a letter or digit.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise KeelError(f"bucket name {name!r}: 1 to 63 characters of a-z, 0-9, '_', '.', '-', "
                        "starting with a letter or digit")
    return name


def _count(instance: BucketSpec, attribute: attrs.Attribute, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_REPLICAS:
        raise KeelError(f"bucket {instance.name}: {attribute.name} must be a whole number from 1 to {MAX_REPLICAS}, "
                        f"not {value!r}")


@attrs.frozen
class BucketSpec:
    """One bucket of the table."""

    name: str = attrs.field(validator=lambda _i, _a, v: check_bucket_name(v))
    store: str = attrs.field()
    options: dict[str, Any] = attrs.field(factory=dict, hash=False)
    n: int = attrs.field(default=3, validator=_count)
    r: int = attrs.field(default=2, validator=_count)
    w: int = attrs.field(default=2, validator=_count)

    @store.validator
    def _store(self, _attribute: attrs.Attribute, value: object) -> None:
        if not isinstance(value, str) or not value:
            raise KeelError(f"bucket {self.name}: store must name a store plugin, not {value!r}")

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.options, dict) or not all(isinstance(k, str) for k in self.options):
            raise KeelError(f"bucket {self.name}: options must be a table of named values")
        for which in ("r", "w"):
            if getattr(self, which) > self.n:
                raise KeelError(f"bucket {self.name}: {which}={getattr(self, which)} exceeds n={self.n}")

    def to_bytes(self) -> bytes:
        return wire.encode_plain({"name": self.name, "store": self.store, "options": self.options,
                                  "n": self.n, "r": self.r, "w": self.w})

    @classmethod
    def from_bytes(cls, data: bytes) -> BucketSpec:
        """The bucket `to_bytes` gave.

        Raises:
            KeelError: the bytes are not a bucket (the message says why).
        """
        try:
            raw = wire.decode_plain(data, "bucket")
        except WireError as exc:
            raise KeelError(f"bucket: {exc}") from None
        if not isinstance(raw, dict) or set(raw) != {"name", "store", "options", "n", "r", "w"}:
            raise KeelError("bucket: expected a table of name, store, options, n, r, w")
        return cls(**raw)

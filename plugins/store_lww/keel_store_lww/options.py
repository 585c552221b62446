"""The options of an LWW bucket (`keel bucket create NAME --store lww --option tombstone_grace=...`)."""

from __future__ import annotations

import attrs

__all__ = ["DEFAULT_TOMBSTONE_GRACE_S", "LwwOptions"]

# A day: a replica that is down longer than this and missed a delete may
# bring the deleted value back through anti-entropy (Cassandra's
# gc_grace_seconds plays the same part, with ten days).
DEFAULT_TOMBSTONE_GRACE_S = 86_400.0


def _grace(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 10 * 365 * 86_400:
        raise ValueError(f"{attribute.name} must be seconds above 0 and at most ten years, not {value!r}")


@attrs.frozen(kw_only=True)
class LwwOptions:
    """How long a delete's tombstone is kept before it may be collected."""

    # seconds after a delete (by its timestamp's wall time) before its tombstone may be dropped
    tombstone_grace: float = attrs.field(default=DEFAULT_TOMBSTONE_GRACE_S, converter=float, validator=_grace)

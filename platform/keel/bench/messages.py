"""Messages that only benchmarks send."""

from __future__ import annotations

import attrs

from keel.wire import message

__all__ = ["Blob"]


@message("bench.blob")
@attrs.frozen
class Blob:
    """A numbered payload, shaped like a small replicated command."""

    seq: int
    key: str
    payload: bytes

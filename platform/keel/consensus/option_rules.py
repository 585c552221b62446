"""Validators that engines' `[consensus.options]` classes share.

Each is an attrs validator; its message is about the value alone, and the
host's config loader prefixes it with the field's dotted path.
"""

from __future__ import annotations

from typing import Any

import attrs

from keel.wire import MAX_FRAME

__all__ = ["FRAME_HEADROOM", "chunk_size", "whole_number"]

# bytes a snapshot-chunk message needs beyond its chunk: tag, field names,
# term or ballot, offsets and the snapshot's meta with its encoded membership.
FRAME_HEADROOM = 64 * 2**10


def whole_number(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if type(value) is not int or value < 0:
        raise ValueError(f"{value!r} is not a whole number of at least 0")


def chunk_size(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """Bytes of snapshot per message: at least 1, and a whole message within max_frame."""
    if type(value) is not int or not 1 <= value <= MAX_FRAME - FRAME_HEADROOM:
        raise ValueError(f"{value!r} is not a chunk size from 1 to {MAX_FRAME - FRAME_HEADROOM} bytes "
                         f"(max_frame less {FRAME_HEADROOM} bytes of headroom)")

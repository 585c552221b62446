"""How fast the wire codec turns messages into frames and back."""

from __future__ import annotations

import time
from typing import Any

from keel import wire
from keel.bench.messages import Blob

__all__ = ["bench_wire"]

PAYLOAD = 256  # bytes; the value size of the core's write targets


def _rate(fn: Any, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        fn()
    return count / (time.perf_counter() - start)


def bench_wire(count: int = 50_000) -> dict[str, Any]:
    """Frames encoded and decoded per second, for one 256-byte message."""
    msg = Blob(seq=123456, key="key-0042", payload=b"x" * PAYLOAD)
    frame = wire.encode_frame(msg)
    decoder = wire.FrameDecoder()
    return {
        "message": "bench.blob, 256-byte payload",
        "frame_bytes": len(frame),
        "encode_per_s": round(_rate(lambda: wire.encode_frame(msg), count)),
        "decode_per_s": round(_rate(lambda: decoder.feed(frame), count)),
    }

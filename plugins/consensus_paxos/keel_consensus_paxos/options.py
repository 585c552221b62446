"""`[consensus.options]` of the Paxos engine: stickiness, snapshot chunks, promotion lag."""

from __future__ import annotations

from typing import Any

import attrs
from attrs.validators import instance_of

from keel.wire import MAX_FRAME

__all__ = ["FRAME_HEADROOM", "PaxosOptions"]

# bytes an InstallSnapshot needs beyond its chunk: tag, field names, ballot,
# offsets and the snapshot's meta with its encoded membership.
FRAME_HEADROOM = 64 * 2**10


def _count(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if type(value) is not int or value < 0:
        raise ValueError(f"{value!r} is not a whole number of at least 0")


def _chunk(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if type(value) is not int or not 1 <= value <= MAX_FRAME - FRAME_HEADROOM:
        raise ValueError(f"{value!r} is not a chunk size from 1 to {MAX_FRAME - FRAME_HEADROOM} bytes "
                         f"(max_frame less {FRAME_HEADROOM} bytes of headroom)")


@attrs.frozen(kw_only=True)
class PaxosOptions:
    """How the Paxos engine behaves beyond the basic algorithm.

    Timing (heartbeat, failure-detection timeouts) and batching come from
    the host's `EngineSettings`; these are Paxos's own switches.
    """

    # An acceptor that heard from a live leader within the minimum election
    # timeout refuses other candidates' Prepares, so a node that was cut off
    # cannot depose a healthy leader when it returns. Safety never depends
    # on it: it only refuses promises.
    sticky: bool = attrs.field(default=True, validator=instance_of(bool))
    # bytes of snapshot data per InstallSnapshot message.
    snapshot_chunk: int = attrs.field(default=1 * 2**20, validator=_chunk)
    # slots a learner may trail the leader's last slot and still be promoted.
    promote_lag: int = attrs.field(default=64, validator=_count)

"""`[consensus.options]` of the Paxos engine: stickiness, snapshot chunks, promotion lag."""

from __future__ import annotations

import attrs
from attrs.validators import instance_of

from keel.consensus import FRAME_HEADROOM, chunk_size, whole_number

__all__ = ["FRAME_HEADROOM", "PaxosOptions"]


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
    snapshot_chunk: int = attrs.field(default=1 * 2**20, validator=chunk_size)
    # slots a learner may trail the leader's last slot and still be promoted.
    promote_lag: int = attrs.field(default=64, validator=whole_number)

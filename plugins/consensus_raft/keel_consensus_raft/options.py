"""`[consensus.options]` of the Raft engine: which of the thesis's extensions run, and transfer sizes."""

from __future__ import annotations

import attrs
from attrs.validators import instance_of

from keel.consensus import FRAME_HEADROOM, chunk_size, whole_number

__all__ = ["FRAME_HEADROOM", "RaftOptions"]


@attrs.frozen(kw_only=True)
class RaftOptions:
    """How the Raft engine behaves beyond the basic algorithm.

    Timing (heartbeat, election timeouts) and batching come from the host's
    `EngineSettings`; these are Raft's own switches.
    """

    # Thesis §9.6: ask for votes without raising terms first, so a node that
    # was cut off cannot depose a healthy leader when it returns.
    pre_vote: bool = attrs.field(default=True, validator=instance_of(bool))
    # Thesis §6.2: a leader that has not heard from a quorum within an
    # election timeout steps down; followers that hear from a leader refuse
    # votes for the minimum election timeout (§4.2.3).
    check_quorum: bool = attrs.field(default=True, validator=instance_of(bool))
    # bytes of snapshot data per InstallSnapshot message; 1 MiB keeps every
    # frame far below the default max_frame (16 MiB) and a lost chunk cheap.
    snapshot_chunk: int = attrs.field(default=1 * 2**20, validator=chunk_size)
    # entries a learner may trail the leader's last index and still be
    # promoted; one default batch (512) closes such a gap in a round trip,
    # so the new voter does not stall commits while it catches up.
    promote_lag: int = attrs.field(default=64, validator=whole_number)

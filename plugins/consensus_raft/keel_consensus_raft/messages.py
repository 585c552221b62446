"""What Raft peers send each other, and the records Raft encodes into opaque bytes.

Every message carries the sender's `term` (for a pre-vote request, the term
the sender would campaign in). Tags are `raft.*`, stable strings never
derived from class names. A field added later must have a default, so older
peers still decode the message; decoders ignore keys they do not know.

Two records are not messages between peers but travel inside bytes the host
keeps for the engine: `HardState` is the payload of `SaveStable`, and
`Configuration` is the data of a CONFIG entry and of `SnapshotMeta.config`.
"""

from __future__ import annotations

from typing import Any

import attrs

from keel import wire
from keel.consensus import Entry, SnapshotMeta

__all__ = [
    "AppendEntries",
    "AppendReply",
    "Configuration",
    "HardState",
    "Heartbeat",
    "HeartbeatReply",
    "InstallSnapshot",
    "RequestVote",
    "SnapshotReply",
    "TimeoutNow",
    "VoteReply",
]


@wire.message("raft.vote")
@attrs.frozen
class RequestVote:
    """A candidate (or, with `pre_vote`, a would-be candidate) asks for a vote."""

    term: int  # the candidate's term; for a pre-vote, the term it would campaign in
    last_index: int  # index of the candidate's last log entry
    last_term: int  # term of that entry
    pre_vote: bool = False  # thesis §9.6: only asks whether a real vote would be granted
    transfer: bool = False  # sent after TimeoutNow: voters skip the leader-stickiness check (§3.10)


@wire.message("raft.vote_reply")
@attrs.frozen
class VoteReply:
    term: int  # the voter's term; for a granted pre-vote, the term that was asked about
    granted: bool
    pre_vote: bool = False


@wire.message("raft.append")
@attrs.frozen
class AppendEntries:
    """The leader's entries following (prev_index, prev_term), and its commit index."""

    term: int
    prev_index: int
    prev_term: int
    entries: tuple[Entry, ...]
    commit: int
    beat: int = 0  # the leader's read-index round when sent; echoed in the reply


@wire.message("raft.append_reply")
@attrs.frozen
class AppendReply:
    """A follower's answer to AppendEntries (or the leader's note to itself that its log is durable)."""

    term: int
    success: bool
    # success: the follower's log matches the leader's up to `index`;
    # failure: the prev_index that did not match.
    index: int
    # failure only: the follower's last index at or below the rejected one
    # whose term is at most the rejected prev_term, and that entry's term, so
    # the leader skips a whole conflicting term per round trip (§5.3).
    hint_index: int = 0
    hint_term: int = 0
    beat: int = 0


@wire.message("raft.heartbeat")
@attrs.frozen
class Heartbeat:
    """Leadership and commit news without entries, safe to reorder with AppendEntries.

    `commit` never exceeds what the receiver is known to hold, so it needs
    no log check.
    """

    term: int
    commit: int
    beat: int


@wire.message("raft.heartbeat_reply")
@attrs.frozen
class HeartbeatReply:
    term: int
    beat: int


@wire.message("raft.snapshot")
@attrs.frozen
class InstallSnapshot:
    """One chunk of the leader's snapshot; `done` marks the last."""

    term: int
    meta: SnapshotMeta
    offset: int  # byte offset of `data` in the snapshot
    data: bytes
    done: bool


@wire.message("raft.snapshot_reply")
@attrs.frozen
class SnapshotReply:
    term: int
    index: int  # the snapshot's index the reply is about
    offset: int  # bytes the follower holds; the next chunk starts here
    done: bool  # the follower installed it (or already had everything it covers)


@wire.message("raft.timeout_now")
@attrs.frozen
class TimeoutNow:
    """The leader hands over: start an election now, skipping PreVote (thesis §3.10)."""

    term: int


@wire.message("raft.hard_state")
@attrs.frozen
class HardState:
    """The stable state: current term and the vote cast in it."""

    term: int
    vote: str | None = None


def _sorted_names(value: Any) -> tuple[str, ...]:
    return tuple(sorted(value))


@wire.message("raft.config")
@attrs.frozen
class Configuration:
    """A cluster membership: voters decide, learners only receive the log."""

    voters: tuple[str, ...] = attrs.field(converter=_sorted_names)
    learners: tuple[str, ...] = attrs.field(default=(), converter=_sorted_names)

    @classmethod
    def bootstrap(cls, voters: tuple[str, ...]) -> Configuration:
        """The first configuration: `voters`, no learners."""
        return cls(voters=voters)

    def changed(self, voters: tuple[str, ...], learners: tuple[str, ...]) -> Configuration:
        """The configuration with these members."""
        return Configuration(voters=voters, learners=learners)

    def encode(self) -> bytes:
        return wire.encode(self)

    @property
    def members(self) -> tuple[str, ...]:
        """Voters and learners, sorted."""
        return tuple(sorted(self.voters + self.learners))

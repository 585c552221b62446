"""The envelope every request travels in, batches of them, membership changes and status.

Part of the core's client protocol; see `keel.core.api`.
"""

from __future__ import annotations

import attrs

from keel.wire import AnyMessage, message

__all__ = ["SESSION_WINDOW", "Batch", "BatchReply", "Call", "ChangeMembership", "CoreStatus", "CoreStatusReply",
           "MembershipReply"]

# A mutating Call's seq may be at most this far above the `acked` it carries: a client never has more
# requests unsettled than this, so the core keeps at most this many answers per client (`keel.core.sessions`).
SESSION_WINDOW = 1024


# --- the envelope ------------------------------------------------------------------


@message("core.call")
@attrs.frozen
class Call:
    """One client request. `seq` > 0 for mutating requests, 0 for the rest."""

    client: str  # the client's session id, random per client
    seq: int  # 1, 2, 3… per client for requests that go through the log
    acked: int  # every seq up to here has been answered and will not be retried; seq - acked <= SESSION_WINDOW
    op: AnyMessage


# --- batches ---------------------------------------------------------------------------


@message("core.batch")
@attrs.frozen
class Batch:
    """Several `Call`s in one request, answered together: one frame and one node task for many calls.

    Each call is handled as if it came alone (its own session seq, its own
    answer); none may hold the node (no watches, locks or campaigns). The
    node answers once every call has its answer, or its request timeout
    has passed (that call's answer is then `Unavailable`).
    """

    calls: tuple[Call, ...]


@message("core.batch_reply")
@attrs.frozen
class BatchReply:
    """One answer per call of a `Batch`, in order."""

    replies: tuple[AnyMessage, ...]  # one per call, in order: its reply, or an ErrorReply


# --- membership --------------------------------------------------------------------------


@message("core.change_membership")
@attrs.frozen
class ChangeMembership:
    """One server joins as a learner ("add_learner"), becomes a voter ("promote") or leaves ("remove").

    The leader starts the change through its log and answers with the
    configuration it now holds (the change may not be committed yet); ask
    again later to see it through. One change at a time: a second is
    refused while the first is in flight.
    """

    action: str
    node: str


@message("core.membership_reply")
@attrs.frozen
class MembershipReply:
    """The configuration the leader holds after the change."""

    voters: tuple[str, ...]
    learners: tuple[str, ...] = ()


# --- status ----------------------------------------------------------------------------


@message("core.status")
@attrs.frozen
class CoreStatus:
    """What this core node's engine and state machine say."""


@message("core.status_reply")
@attrs.frozen(kw_only=True)
class CoreStatusReply:
    """A core node's engine and state machine: role, leader, term, indexes, revision, members."""

    node_id: str
    consensus: str
    role: str
    leader: str | None
    term: int
    commit_index: int
    applied_index: int
    last_index: int
    revision: int
    voters: tuple[str, ...]
    learners: tuple[str, ...] = ()
    log_bytes: int = 0
    requests: int = 0  # client calls this node has taken since it started (a batch counts its calls)

"""Everything one Raft server remembers, in one place, and the few rules every module shares.

Theory of operation. The engine's behaviour is split by concept (election,
replication, snapshots, read index, transfer, membership); each module works
on this one `RaftState` and says which of its fields it owns. Only `term`
and `vote` are persistent (through the outbox, see `save_stable`); the log
persists itself; everything else is rebuilt after a restart: the commit
index is relearned from the leader and starts at the snapshot.

Time is whatever the driver last passed to `tick`; nothing here reads a
clock. Randomness is the one `random.Random` the driver handed in. Wherever
several peers are visited, they are visited in sorted order, so no set or
dict order reaches an output.
"""

from __future__ import annotations

import math
import random
from typing import Any

import attrs

from keel.consensus import EngineSettings, SnapshotMeta

from keel_consensus_raft.log import RaftLog
from keel_consensus_raft.membership import Membership
from keel_consensus_raft.options import RaftOptions
from keel_consensus_raft.outbox import Outbox
from keel_consensus_raft.progress import Progress
from keel_consensus_raft.roles import Role

__all__ = ["IncomingSnapshot", "PendingRead", "RaftState", "Transfer"]


@attrs.define
class PendingRead:
    """A read barrier a leader has not answered yet (owned by `read_index`)."""

    request: int
    index: int | None  # the commit index to read at; None until the leader has committed in its term
    beat: int | None = None  # the heartbeat round that must confirm leadership; None until one starts


@attrs.define
class Transfer:
    """A leadership transfer in progress (owned by `transfer`)."""

    target: str
    deadline: float  # local seconds; abandoned after an election timeout (thesis §3.10)


@attrs.define
class IncomingSnapshot:
    """Chunks of a leader's snapshot received so far (owned by `snapshots`)."""

    meta: SnapshotMeta
    data: bytearray


@attrs.define(eq=False)
class RaftState:
    """One server's state; see the module doc for who owns what."""

    node_id: str
    settings: EngineSettings
    options: RaftOptions
    rng: random.Random
    out: Outbox
    log: RaftLog
    members: Membership
    # persistent, through `save_stable`
    term: int = 0
    vote: str | None = None
    # roles (owned by `roles`)
    role: Role = Role.FOLLOWER
    leader: str | None = None
    reported_role: str = ""  # last role announced in a RoleChanged event
    # commitment: indexes up to `commit` are committed; up to `applied` handed to the driver
    commit: int = 0
    applied: int = 0
    # time (owned by `election`, except where noted)
    now: float = 0.0  # the driver's clock at the latest tick
    ticked: bool = False  # timers start with the first tick, whose `now` may be anything
    election_deadline: float = math.inf
    leader_contact: float = -math.inf  # when a leader of the current term was last heard from
    votes: dict[str, bool] = attrs.Factory(dict)  # a (pre-)candidate's answers so far
    # leading (owned by `replication`)
    progress: dict[str, Progress] = attrs.Factory(dict)  # every member the leader replicates to, itself included
    self_acked: int = 0  # last index the leader sent itself a durability note for
    heartbeat_due: float = 0.0
    quorum_due: float = 0.0  # when CheckQuorum next looks at which voters were heard from
    # read index (owned by `read_index`)
    reads: list[PendingRead] = attrs.Factory(list)
    beat: int = 0  # the leader's latest heartbeat round
    # leadership transfer (owned by `transfer`)
    transfer: Transfer | None = None
    # snapshots (owned by `snapshots`)
    snapshot_data: bytes | None = None  # the data of `log.snapshot`, once the driver handed it over
    incoming: IncomingSnapshot | None = None

    def send(self, dst: str, message: Any, *, early: bool = False) -> None:
        """Queue a message; `early` ones may leave before this poll's persist is durable (see `Outbox`)."""
        self.out.send(dst, message, early=early)

    def save_stable(self) -> None:
        """Term or vote changed: persist them before any message sent from now on."""
        self.out.save_stable(self.term, self.vote)

    def peers(self) -> tuple[str, ...]:
        """Every other member (voters and learners), sorted."""
        return tuple(n for n in self.members.config.members if n != self.node_id)

    def voting_peers(self) -> tuple[str, ...]:
        return tuple(n for n in self.members.config.voters if n != self.node_id)

    def reset_election_timer(self) -> None:
        """Draw a fresh randomized election timeout (§5.2), from the next tick on."""
        low, high = self.settings.election_min, self.settings.election_max
        self.election_deadline = self.now + self.rng.uniform(low, high)

    def in_lease(self) -> bool:
        """Whether a leader is known to be alive, so votes for others are refused (thesis §4.2.3).

        A leader trusts itself (CheckQuorum deposes it when it lost its
        quorum); a follower trusts a leader heard from within the minimum
        election timeout.
        """
        if not self.options.check_quorum or self.leader is None:
            return False
        return self.role is Role.LEADER or self.now - self.leader_contact < self.settings.election_min

    def committed_in_term(self) -> bool:
        """Whether an entry of the current term is committed (a new leader's NOOP, at least)."""
        return self.log.term_at(self.commit) == self.term

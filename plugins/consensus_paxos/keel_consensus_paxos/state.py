"""Everything one Paxos node knows, in one mutable record the handlers share.

Theory of operation. The engine's modules are functions over this state:
`acceptor` (phase 1b and 2b, learning), `proposer` (phase 1a, recovery,
role changes), `replication` (phase 2a, commits, heartbeats, read barriers,
hand-over), `snapshots` and `membership_change`. The fields each one owns
are grouped below; the others only read them.
"""

from __future__ import annotations

import enum
import random

import attrs

from keel.consensus import EngineSettings

from keel_consensus_paxos.log import AcceptorLog
from keel_consensus_paxos.membership import Membership
from keel_consensus_paxos.messages import Promise
from keel_consensus_paxos.options import PaxosOptions
from keel_consensus_paxos.outbox import Outbox

__all__ = ["Candidacy", "Incoming", "PaxosState", "Peer", "Role", "Transfer"]


class Role(enum.Enum):
    """What a node does now; the values are what `keel status` prints."""

    FOLLOWER = "follower"  # a voter that follows a leader (or waits for one)
    CANDIDATE = "candidate"  # a voter running phase 1
    LEADER = "leader"  # ran phase 1 with a quorum: proposes, decides what is chosen
    LEARNER = "learner"  # not a voter in the configuration in force: learns, never campaigns


@attrs.define
class Peer:
    """The leader's view of one other member."""

    next: int  # the next slot to send
    match: int = 0  # every slot up to here holds this leader's value there
    inflight: list[int] = attrs.Factory(list)  # last slot of each Accept not answered yet
    answered_at: float = 0.0  # when it last answered an Accept or a snapshot chunk (for the stall check)
    heard_at: float = float("-inf")  # when it last answered anything at this ballot (check-quorum)
    beat: int = 0  # the highest read-barrier round it confirmed
    snapshot_index: int = 0  # non-zero while a snapshot at that index is being shipped
    offset: int = 0  # bytes of that snapshot it holds


@attrs.define
class Candidacy:
    """Phase 1 under way: the ballot, the first slot asked about, the answers so far."""

    ballot: int
    first: int
    promises: dict[str, Promise]
    refused: set[str] = attrs.Factory(set)
    asked: set[str] = attrs.Factory(set)  # nodes sent the Prepare (self included): whose answers count
    probing: bool = False  # still asking whether voters would promise; nothing raised or persisted yet
    takeover: bool = False  # run for a hand-over: Prepares skip the acceptors' stickiness


@attrs.define
class Incoming:
    """A snapshot arriving in chunks."""

    index: int
    data: bytearray


@attrs.define
class Transfer:
    """The leader is handing over to `target`, until `until`."""

    target: str
    until: float
    sent: bool = False


@attrs.define
class PaxosState:
    """One node's whole state: durable (`promised`, the log), and what it rebuilds after a restart."""

    node_id: str
    settings: EngineSettings
    options: PaxosOptions
    rng: random.Random
    out: Outbox
    log: AcceptorLog
    members: Membership
    promised: int  # the highest ballot promised; durable (Stable) before any message made under it leaves

    # acceptor and learner (acceptor)
    role: Role = Role.FOLLOWER
    leader: str | None = None
    leader_ballot: int = 0  # the ballot of the leader followed (or this node's, leading)
    commit: int = 0  # every slot up to here is chosen, and this node holds the chosen value
    applied: int = 0  # every slot up to here was handed out in Ready.committed
    synced: int = 0  # every slot up to here holds the value the leader at leader_ballot has there
    heard_at: float = float("-inf")  # when the leader followed was last heard (stickiness)

    # time and failure detection (proposer)
    now: float = 0.0
    ticked: bool = False
    deadline: float = 0.0  # when a voter that hears no leader runs phase 1
    failures: int = 0  # phase-1 attempts in a row that failed: widens the back-off
    highest_seen: int = 0  # the highest ballot heard of, promised or not
    candidacy: Candidacy | None = None

    # leading (replication)
    peers: dict[str, Peer] = attrs.Factory(dict)
    ready_slot: int = 0  # the leader's no-op after recovery; reads and changes wait until it is chosen
    own_match: int = 0  # this leader's own log is durable up to here
    own_noted: int = 0  # last slot of the note to itself sent so far
    led_since: float = 0.0
    beat: int = 0  # read-barrier rounds started
    beat_sent: int = 0
    reads: list[tuple[int, int, int]] = attrs.Factory(list)  # (request, beat, index) waiting
    next_heartbeat: float = 0.0
    transfer: Transfer | None = None
    uncommitted_bytes: int = 0  # entry bytes of the leader's slots above commit

    # snapshots (snapshots)
    snapshot_data: bytes | None = None
    incoming: Incoming | None = None

    reported_role: str = "follower"  # the role last announced in a RoleChanged event

    def voters(self) -> tuple[str, ...]:
        return self.members.config.voters

    def voting_peers(self) -> list[str]:
        return [v for v in self.voters() if v != self.node_id]

    def election_timeout(self) -> float:
        """A failure-detection timeout; its range widens with failed attempts, so two candidates drift apart."""
        low, high = self.settings.election_min, self.settings.election_max
        return self.rng.uniform(low, high + min(self.failures, 3) * (high - low))

    def reset_deadline(self) -> None:
        self.deadline = self.now + self.election_timeout()

    def send(self, dst: str, message: object, *, early: bool = False) -> None:
        self.out.send(dst, message, early=early)

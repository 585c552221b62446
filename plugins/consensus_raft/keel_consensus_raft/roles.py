"""Roles and the transitions between them: the one place a role, term or leader changes.

Theory of operation. `TRANSITIONS` lists which role may follow which; any
other change is a bug and raises. Entering a role resets what the old role
kept (a follower keeps no replication progress, no pending reads, no
transfer). Role and leader changes are announced as events at the moment
they happen, so a checker sees every leader of every term, however brief.

  follower ──timeout──▶ pre-candidate ──pre-votes──▶ candidate ──votes──▶ leader
      ▲ ▲ ▲                   │                         │                  │
      │ │ └── higher term, a leader, lost pre-vote ─────┘                  │
      │ └──────────────── higher term, a leader, lost election ───────────┘ (or lost quorum)
      └── TimeoutNow from the leader (skips the pre-vote) ─▶ candidate
  A candidate whose election timed out starts over (with a pre-vote, if enabled).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from keel.consensus import Entry, EntryKind, LeaderChanged, RoleChanged

from keel_consensus_raft.progress import Progress

if TYPE_CHECKING:
    from keel_consensus_raft.state import RaftState

__all__ = ["TRANSITIONS", "Role", "announce_role", "become_candidate", "become_follower", "become_leader",
           "become_pre_candidate", "follow"]


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


TRANSITIONS: dict[Role, frozenset[Role]] = {
    Role.FOLLOWER: frozenset({Role.FOLLOWER, Role.PRE_CANDIDATE, Role.CANDIDATE}),
    Role.PRE_CANDIDATE: frozenset({Role.FOLLOWER, Role.PRE_CANDIDATE, Role.CANDIDATE}),
    Role.CANDIDATE: frozenset({Role.FOLLOWER, Role.PRE_CANDIDATE, Role.CANDIDATE, Role.LEADER}),
    Role.LEADER: frozenset({Role.FOLLOWER}),
}


def _enter(s: RaftState, role: Role) -> None:
    if role not in TRANSITIONS[s.role]:
        raise AssertionError(f"raft {s.node_id}: {s.role.value} cannot become {role.value} (term {s.term})")
    if s.role is Role.LEADER:
        s.progress = {}
        s.reads = []
        s.transfer = None
    s.role = role
    s.votes = {}


def become_follower(s: RaftState, term: int, leader: str | None) -> None:
    """Follow `leader` (or nobody yet) in `term`, which is never below the current one."""
    if term > s.term:
        s.term, s.vote = term, None
        s.save_stable()
    _enter(s, Role.FOLLOWER)
    _set_leader(s, leader)
    s.reset_election_timer()
    announce_role(s)


def follow(s: RaftState, leader: str) -> None:
    """A leader of the current term spoke: follow it and hold off elections."""
    if s.role is not Role.FOLLOWER:
        become_follower(s, s.term, leader)
    else:
        _set_leader(s, leader)
    s.leader_contact = s.now
    s.reset_election_timer()


def become_pre_candidate(s: RaftState) -> None:
    _enter(s, Role.PRE_CANDIDATE)
    _set_leader(s, None)
    s.reset_election_timer()
    announce_role(s)


def become_candidate(s: RaftState) -> None:
    """Start a real election: a new term, and a vote for ourselves, persisted before any request leaves."""
    _enter(s, Role.CANDIDATE)
    s.term += 1
    s.vote = s.node_id
    s.save_stable()
    _set_leader(s, None)
    s.reset_election_timer()
    announce_role(s)


def become_leader(s: RaftState) -> None:
    """Lead: probe every member from the end of our log, and append a NOOP of this term (§8)."""
    _enter(s, Role.LEADER)
    _set_leader(s, s.node_id)
    s.progress = {node: Progress(next=s.log.last_index + 1) for node in s.members.config.members}
    s.progress.setdefault(s.node_id, Progress())
    s.self_acked = 0
    s.reads = []
    s.heartbeat_due = s.now + s.settings.heartbeat
    s.quorum_due = s.now + s.settings.election_max
    s.election_deadline = float("inf")
    # Only entries of its own term can be committed by counting replicas
    # (§5.4.2); the NOOP gives the new leader one at once, which commits
    # everything before it and lets it serve reads (§6.4).
    s.log.append((Entry(index=s.log.last_index + 1, term=s.term, kind=EntryKind.NOOP),))
    announce_role(s)


def _set_leader(s: RaftState, leader: str | None) -> None:
    if leader != s.leader:
        s.leader = leader
        s.out.event(LeaderChanged(leader, s.term))


def announce_role(s: RaftState) -> None:
    """Report the role if its name changed; a follower outside the voters is a learner."""
    name = s.role.value
    if s.role is Role.FOLLOWER and not s.members.is_voter(s.node_id):
        name = "learner"
    if name != s.reported_role:
        s.reported_role = name
        s.out.event(RoleChanged(name, s.term))

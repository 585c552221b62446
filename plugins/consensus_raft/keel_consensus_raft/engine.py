"""RaftEngine: the Raft engine behind keel's `Engine` contract.

Theory of operation. The engine is a plain object: the driver calls the
verbs below, then polls a `Ready` and carries it out in the contract's order
(persist and fsync, send, install, apply, answer reads, report events).
Inputs only change state and gather output; `poll` is where a leader sends
what accumulated (so a burst of proposals becomes one append batch and one
fsync) and where committed entries are handed out, each index once in this
engine's life, in order, continuing after the snapshot.

Every peer message goes first through the term rules (`election.accept_term`)
and then to the one handler `HANDLERS` names for its type; a message of
another type is ignored. The handlers live with their concept:
`election` (votes, PreVote, CheckQuorum), `replication` (appends, commit),
`snapshots` (compaction, InstallSnapshot), `read_index`, `transfer`,
`membership`; `roles` holds the role transitions; `state` the data.

After a restart the engine starts from `Recovered`: term and vote, the log
and the snapshot meta. Its commit index starts at the snapshot's, and the
driver, having rebuilt its state machine from that snapshot, hands its data
back with `snapshot_taken` (so the engine can ship it) and then applies what
the engine commits from there on: nothing is applied twice.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from keel import wire
from keel.consensus import Entry, EngineSettings, EngineStatus, EntryKind, MembershipChange, Ready, Recovered, \
    SnapshotMeta
from keel.errors import NotLeader, StorageError, WireError

from keel_consensus_raft import election, membership, read_index, replication, roles, snapshots, transfer
from keel_consensus_raft.log import RaftLog
from keel_consensus_raft.membership import Membership
from keel_consensus_raft.messages import AppendEntries, AppendReply, HardState, Heartbeat, HeartbeatReply, \
    InstallSnapshot, RequestVote, SnapshotReply, TimeoutNow, VoteReply
from keel_consensus_raft.options import RaftOptions
from keel_consensus_raft.outbox import Outbox
from keel_consensus_raft.roles import Role
from keel_consensus_raft.state import RaftState

__all__ = ["HANDLERS", "RaftEngine", "create"]

Handler = Callable[[RaftState, str, Any], None]

HANDLERS: dict[type, Handler] = {
    RequestVote: election.on_request_vote,
    VoteReply: election.on_vote_reply,
    AppendEntries: replication.on_append,
    AppendReply: replication.on_append_reply,
    Heartbeat: replication.on_heartbeat,
    HeartbeatReply: replication.on_heartbeat_reply,
    InstallSnapshot: snapshots.on_install_snapshot,
    SnapshotReply: replication.on_snapshot_reply,
    TimeoutNow: transfer.on_timeout_now,
}


class RaftEngine:
    """A sans-I/O Raft server; see `keel.consensus.Engine` for the contract it keeps."""

    def __init__(self, settings: EngineSettings, recovered: Recovered, rng: random.Random) -> None:
        """Build a server from its settings and what survived on disk.

        Raises:
            StorageError: the recovered stable state, log or configuration is corrupt.
            TypeError, ValueError: the settings break a rule (a bug in the caller).
        """
        options = settings.options if settings.options is not None else RaftOptions()
        if not isinstance(options, RaftOptions):
            raise TypeError(f"raft: options must be RaftOptions, not {type(options).__name__}")
        settings.check("raft")
        out = Outbox()
        try:
            members = Membership.recover(recovered.snapshot, recovered.entries, tuple(settings.voters))
            hard = wire.decode_as(recovered.stable, HardState, "stable state") if recovered.stable else HardState(0)
        except WireError as exc:
            raise StorageError(f"raft: recovered state is corrupt: {exc}") from None
        log = RaftLog(recovered, out.log_op)
        s = self._s = RaftState(node_id=settings.node_id, settings=settings, options=options, rng=rng, out=out,
                                log=log, members=members, term=hard.term, vote=hard.vote)
        s.commit = s.applied = log.snapshot.index
        roles.announce_role(s)

    # --- inputs ----------------------------------------------------------------

    def tick(self, now: float) -> None:
        s = self._s
        s.now = max(s.now, now) if s.ticked else now
        if not s.ticked:
            s.ticked = True
            s.reset_election_timer()
        if s.role is Role.LEADER:
            replication.heartbeat(s)
            election.check_quorum(s)
        else:
            election.on_tick(s)

    def receive(self, src: str, message: Any) -> None:
        s = self._s
        handler = HANDLERS.get(type(message))
        if handler is None:
            return
        if src == s.node_id:
            # Only our own durability note comes back to us, and only for the current term.
            if isinstance(message, AppendReply) and message.term == s.term:
                replication.on_append_reply(s, src, message)
            return
        if election.accept_term(s, src, message):
            handler(s, src, message)

    def propose(self, command: bytes) -> int:
        """Append `command` to the leader's log; returns its index.

        Raises:
            NotLeader: this server does not lead, or is handing leadership over
                (the hint then names the new leader to be).
            TypeError, ValueError: the command is not bytes, or is larger than
                one append batch may carry (`max_batch_bytes`).
        """
        s = self._s
        if s.role is not Role.LEADER:
            raise NotLeader(s.leader)
        if s.transfer is not None:
            raise NotLeader(s.transfer.target)
        if type(command) is not bytes:
            raise TypeError(f"raft propose: command must be bytes, not {type(command).__name__}")
        if len(command) > s.settings.max_batch_bytes:
            raise ValueError(f"raft propose: command of {len(command)} bytes exceeds max_batch_bytes "
                             f"({s.settings.max_batch_bytes})")
        entry = Entry(index=s.log.last_index + 1, term=s.term, kind=EntryKind.COMMAND, data=command)
        s.log.append((entry,))
        return entry.index

    def read_barrier(self, request: int) -> None:
        """Ask for a ReadIndex; answered in `Ready.reads`, or never if leadership is lost first.

        Raises:
            NotLeader: this server does not lead.
        """
        read_index.request(self._s, request)

    def change_membership(self, change: MembershipChange) -> int:
        """Add a learner, promote a caught-up learner, or remove a member; returns the CONFIG entry's index.

        Raises:
            NotLeader: this server does not lead.
            KeelError: another change or a transfer is in progress, or the change does not apply.
        """
        return membership.change(self._s, change)

    def transfer_leadership(self, target: str | None = None) -> None:
        """Hand leadership to `target` (or the most caught-up voter); proposals pause meanwhile.

        Raises:
            NotLeader: this server does not lead.
            KeelError: the target is not another voter.
        """
        transfer.start(self._s, target)

    def snapshot_taken(self, meta: SnapshotMeta, data: bytes) -> None:
        """The driver saved a snapshot at `meta.index`; the engine fills in term and membership.

        Raises:
            ValueError: `meta.index` is beyond what was handed out as committed,
                or `meta.term` (when not 0) disagrees with the log.
        """
        snapshots.taken(self._s, meta, data)

    # --- outputs ---------------------------------------------------------------

    def poll(self) -> Ready:
        s = self._s
        replication.flush(s)
        read_index.flush(s)
        committed = s.log.between(s.applied + 1, s.commit)
        s.applied = s.commit
        return s.out.take(committed)

    def status(self) -> EngineStatus:
        s = self._s
        config = s.members.config
        return EngineStatus(role=s.reported_role, leader=s.leader, term=s.term, commit_index=s.commit,
                            last_index=s.log.last_index, voters=config.voters, learners=config.learners)

    @property
    def log(self) -> RaftLog:
        """The engine's log, for checkers and tests to read (never to change)."""
        return self._s.log


def create(settings: EngineSettings, recovered: Recovered, rng: random.Random) -> RaftEngine:
    """The factory keel calls: `EngineFactory` for Raft."""
    return RaftEngine(settings, recovered, rng)

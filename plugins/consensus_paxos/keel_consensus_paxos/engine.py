"""PaxosEngine: Multi-Paxos behind keel's `Engine` contract.

Theory of operation. A classic Multi-Paxos ("Paxos Made Simple"; the roles
of "Paxos Made Moderately Complex") in which every node is acceptor and
learner, and voters may propose. A stable leader runs phase 1 once for
every open slot (`proposer`), then phase 2 per slot, pipelined and batched
(`replication`); acceptors promise and accept per slot (`acceptor`). The
engine is a plain object: the driver calls the verbs below, then polls a
`Ready` and carries it out in the contract's order (persist and fsync,
send, install, apply, answer reads, report events).

Every peer message goes to the one handler `HANDLERS` names for its type;
a message of another type is ignored. Ballots travel as integers
(`ballot`), which is what the contract calls an entry's term and what
`status().term` shows.

After a restart the engine starts from `Recovered`: the promised ballot
with the commit watermark, the accepted log and the snapshot meta. It
hands out committed slots again from the snapshot on (the driver restored
the state machine from it), so nothing is applied twice.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from keel import wire
from keel.consensus import Entry, EngineSettings, EngineStatus, EntryKind, LeaderChanged, MembershipChange, Ready, \
    Recovered, RoleChanged, SnapshotMeta
from keel.errors import StorageError, WireError

from keel_consensus_paxos import acceptor, membership_change, proposer, replication, snapshots
from keel_consensus_paxos.log import AcceptorLog
from keel_consensus_paxos.membership import Membership
from keel_consensus_paxos.messages import Accept, Accepted, Heartbeat, HeartbeatReply, InstallSnapshot, Prepare, \
    Promise, SnapshotReply, Stable, Takeover
from keel_consensus_paxos.options import PaxosOptions
from keel_consensus_paxos.outbox import Outbox
from keel_consensus_paxos.state import PaxosState, Role

__all__ = ["HANDLERS", "PaxosEngine", "create"]

Handler = Callable[[PaxosState, str, Any], None]

HANDLERS: dict[type, Handler] = {
    Prepare: acceptor.on_prepare,
    Promise: proposer.on_promise,
    Accept: acceptor.on_accept,
    Accepted: replication.on_accepted,
    Heartbeat: acceptor.on_heartbeat,
    HeartbeatReply: replication.on_heartbeat_reply,
    InstallSnapshot: snapshots.on_install_snapshot,
    SnapshotReply: snapshots.on_snapshot_reply,
    Takeover: acceptor.on_takeover,
}


class PaxosEngine:
    """A sans-I/O Multi-Paxos node; see `keel.consensus.Engine` for the contract it keeps."""

    def __init__(self, settings: EngineSettings, recovered: Recovered, rng: random.Random) -> None:
        """Build a node from its settings and what survived on disk.

        Raises:
            StorageError: the recovered stable state, log or configuration is corrupt.
            TypeError, ValueError: the settings break a rule (a bug in the caller).
        """
        options = settings.options if settings.options is not None else PaxosOptions()
        if not isinstance(options, PaxosOptions):
            raise TypeError(f"paxos: options must be PaxosOptions, not {type(options).__name__}")
        settings.check("paxos")
        try:
            members = Membership.recover(recovered.snapshot, recovered.entries, tuple(settings.voters))
            stable = wire.decode_as(recovered.stable, Stable, "stable state") if recovered.stable else Stable(0)
        except WireError as exc:
            raise StorageError(f"paxos: recovered state is corrupt: {exc}") from None
        out = Outbox(commit=stable.commit)
        log = AcceptorLog(recovered, out.log_op)
        s = self._s = PaxosState(node_id=settings.node_id, settings=settings, options=options, rng=rng, out=out,
                                 log=log, members=members, promised=stable.promised)
        s.highest_seen = stable.promised
        s.applied = log.snapshot.index
        # The watermark was written after the slots it covers, so the log holds them; the machine re-applies
        # them from the snapshot on, and a candidate need not recover them again.
        s.commit = s.synced = max(log.snapshot.index, min(stable.commit, log.last_index))
        s.role = Role.FOLLOWER if members.is_voter(s.node_id) else Role.LEARNER
        s.reported_role = s.role.value
        out.event(RoleChanged(s.role.value, s.promised))
        out.event(LeaderChanged(None, s.promised))

    # --- inputs ----------------------------------------------------------------

    def tick(self, now: float) -> None:
        s = self._s
        s.now = max(s.now, now) if s.ticked else now
        if not s.ticked:
            s.ticked = True
            s.reset_deadline()
        if s.role is Role.LEADER:
            replication.tick(s)
        else:
            proposer.on_tick(s)

    def receive(self, src: str, message: Any) -> None:
        s = self._s
        handler = HANDLERS.get(type(message))
        if handler is None:
            return
        if src == s.node_id and not isinstance(message, Accepted):
            return  # only the leader's note to itself comes back to it
        handler(s, src, message)

    def propose(self, command: bytes) -> int:
        """Take the next slot for `command`; returns it.

        Raises:
            NotLeader: this node does not lead, or is handing over.
            Unavailable: the pipeline is full.
            TypeError, ValueError: the command is not bytes, or is larger than
                one Accept may carry (`max_batch_bytes`).
        """
        s = self._s
        if type(command) is not bytes:
            raise TypeError(f"paxos propose: command must be bytes, not {type(command).__name__}")
        if len(command) > s.settings.max_batch_bytes:
            raise ValueError(f"paxos propose: command of {len(command)} bytes exceeds max_batch_bytes "
                             f"({s.settings.max_batch_bytes})")
        return replication.propose(s, EntryKind.COMMAND, command)

    def read_barrier(self, request: int) -> None:
        """Ask for a read barrier; answered in `Ready.reads`, or never if leadership is lost first.

        Raises:
            NotLeader: this node does not lead.
        """
        replication.read(self._s, request)

    def change_membership(self, change: MembershipChange) -> int:
        """Add a learner, promote a caught-up learner, or remove a member; returns the CONFIG entry's slot.

        Raises:
            NotLeader: this node does not lead.
            KeelError: another change or a hand-over is in progress, or the change does not apply.
        """
        return membership_change.change(self._s, change)

    def transfer_leadership(self, target: str | None = None) -> None:
        """Hand leadership to `target` (or the most caught-up voter); proposals pause meanwhile.

        Raises:
            NotLeader: this node does not lead.
            KeelError: the target is not another voter.
        """
        replication.transfer(self._s, target)

    def snapshot_taken(self, meta: SnapshotMeta, data: bytes) -> None:
        """The driver saved a snapshot at `meta.index`; the engine fills in ballot and membership.

        Raises:
            ValueError: `meta.index` is beyond what was handed out as committed.
        """
        snapshots.taken(self._s, meta, data)

    # --- outputs ---------------------------------------------------------------

    def poll(self) -> Ready:
        s = self._s
        replication.flush(s)
        committed: tuple[Entry, ...] = s.log.between(s.applied + 1, s.commit)
        s.applied = s.commit
        return s.out.take(committed, s.promised, s.commit)

    def status(self) -> EngineStatus:
        s = self._s
        config = s.members.config
        term = s.leader_ballot if s.role is Role.LEADER else s.promised
        return EngineStatus(role=s.reported_role, leader=s.leader, term=term, commit_index=s.commit,
                            last_index=s.log.last_index, voters=config.voters, learners=config.learners)

    @property
    def log(self) -> AcceptorLog:
        """The engine's log, for checkers and tests to read (never to change)."""
        return self._s.log


def create(settings: EngineSettings, recovered: Recovered, rng: random.Random) -> PaxosEngine:
    """The factory keel calls: `EngineFactory` for Paxos."""
    return PaxosEngine(settings, recovered, rng)

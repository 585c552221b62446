"""Leadership transfer (thesis §3.10): hand leadership to a caught-up voter on purpose.

Theory of operation. The leader picks a target (the one asked for, or the
voter with the highest match), stops taking proposals so the target can
catch up, keeps replicating to it, and once the target's log matches its
own last index sends it TimeoutNow. The target starts an election at once,
skipping PreVote, and flags its vote requests so voters set leader
stickiness aside; its log is as up to date as anyone's, so it wins unless
it fails. If no new leader shows up within an election timeout the
transfer is abandoned and the leader takes proposals again.

This module owns `transfer`.
"""

from __future__ import annotations

from keel.errors import KeelError, NotLeader

from keel_consensus_raft import election
from keel_consensus_raft.messages import TimeoutNow
from keel_consensus_raft.roles import Role
from keel_consensus_raft.state import RaftState, Transfer

__all__ = ["on_heartbeat", "on_progress", "on_timeout_now", "start"]


def start(s: RaftState, target: str | None) -> None:
    """Begin handing leadership to `target`, or to the most caught-up voter.

    Raises:
        NotLeader: this server does not lead.
        KeelError: the target is not another voter, or there is none.
    """
    if s.role is not Role.LEADER:
        raise NotLeader(s.leader)
    voters = s.voting_peers()
    if target is None:
        if not voters:
            raise KeelError("leadership transfer: there is no other voter to hand leadership to")
        target = min(voters, key=lambda v: (-s.progress[v].match if v in s.progress else 0, v))
    elif target == s.node_id:
        return
    elif target not in voters:
        raise KeelError(f"leadership transfer: {target!r} is not another voter (voters: {list(s.members.config.voters)})")
    s.transfer = Transfer(target=target, deadline=s.now + s.settings.election_max)
    _offer(s)


def on_progress(s: RaftState, peer: str) -> None:
    """`peer`'s match moved: if it is the target and caught up, hand over now."""
    if s.transfer is not None and s.transfer.target == peer:
        _offer(s)


def on_heartbeat(s: RaftState) -> None:
    """Abandon a transfer that took an election timeout; otherwise repeat a possibly lost TimeoutNow."""
    if s.transfer is None:
        return
    if s.now >= s.transfer.deadline:
        s.transfer = None
    else:
        _offer(s)


def _offer(s: RaftState) -> None:
    assert s.transfer is not None
    progress = s.progress.get(s.transfer.target)
    if progress is not None and progress.match == s.log.last_index:
        s.send(s.transfer.target, TimeoutNow(term=s.term))


def on_timeout_now(s: RaftState, src: str, message: TimeoutNow) -> None:
    """The leader of our term asks us to take over: campaign now, without a pre-vote."""
    if s.role is Role.LEADER or not s.members.is_voter(s.node_id):
        return
    election.campaign(s, pre_vote=False, transfer=True)

"""The acceptor and learner: promises, acceptances, and learning what is chosen.

Theory of operation ("Paxos Made Simple" §2.2, per slot).
- Promise (phase 1b, in `proposer.promise_or_refuse`): never accept a
  ballot below the highest promised; the promise is durable before the
  answer leaves (the driver persists before `send`).
- Accept (phase 2b): an Accept at a ballot at least the one promised is
  accepted, and raises the promise to it. Slots are held contiguously, so a
  run is taken only where it meets what this node already holds of the
  same leader's values (`synced`); after a gap the acceptor asks the leader
  to send again from `synced + 1`. Slots already known chosen are kept as
  they are. The answer leaves only once the run is durable.
- Learning: every slot up to `synced` holds the leader's value, and every
  slot up to the leader's commit index is chosen; so `commit` rises to the
  lower of the two. A node that takes up a new leader's ballot starts
  `synced` again from its own commit index (slots beyond it may hold values
  of older ballots that were never chosen).
- Any message of a leader at or above the promise makes this node follow
  it (and resets failure detection); one below is refused with the promise,
  so the old leader learns it was superseded.

This module moves `synced`, a follower's `commit`, `leader_ballot` and
`heard_at`; a new leader (`proposer`) and an installed snapshot set them too.
"""

from __future__ import annotations

from keel_consensus_paxos import proposer
from keel_consensus_paxos.messages import Accept, Accepted, Heartbeat, HeartbeatReply, Prepare, Takeover
from keel_consensus_paxos.state import PaxosState, Role

__all__ = ["follow", "on_accept", "on_heartbeat", "on_prepare", "on_takeover", "role_from_config"]


def on_prepare(s: PaxosState, src: str, m: Prepare) -> None:
    s.highest_seen = max(s.highest_seen, m.ballot)
    s.send(src, proposer.promise_or_refuse(s, src, m))


def follow(s: PaxosState, src: str, ballot: int) -> bool:
    """A leader's message at `ballot`: False if refused (below the promise); else follow it."""
    s.highest_seen = max(s.highest_seen, ballot)
    if ballot < s.promised:
        return False
    if ballot > s.promised:
        s.promised = ballot
        s.out.save_stable(ballot)
    if ballot != s.leader_ballot:
        # Another leader's values: only the chosen prefix is known to be what this one has too.
        s.leader_ballot = ballot
        s.synced = s.commit
        s.incoming = None
    if s.leader != src or s.role not in (Role.FOLLOWER, Role.LEARNER):
        proposer.become_follower(s, src)
    s.heard_at = s.now
    s.reset_deadline()
    s.failures = 0
    return True


def on_accept(s: PaxosState, src: str, m: Accept) -> None:
    if any(e.index != m.first + i for i, e in enumerate(m.entries)) or not s.members.readable(m.entries):
        return  # not a run of slots from `first`, or a configuration that does not decode: a broken peer
    if not follow(s, src, m.ballot):
        s.send(src, Accepted(ballot=m.ballot, ok=False, promised=s.promised))
        return
    entries = tuple(e for e in m.entries if e.index > s.commit)  # chosen slots held stay as they are
    first = entries[0].index if entries else m.first
    if first > s.synced + 1:
        s.send(src, Accepted(ballot=m.ballot, ok=False, need=s.synced + 1))
        return
    if entries:
        if entries[-1].index > s.synced:
            changed_from = s.log.accept_run(entries)
            s.synced = entries[-1].index
            if changed_from is not None:
                s.members.rewritten(changed_from, s.log.between(changed_from, s.log.last_index))
                role_from_config(s)
    s.commit = max(s.commit, min(m.commit, s.synced))
    s.send(src, Accepted(ballot=m.ballot, ok=True, match=s.synced))


def role_from_config(s: PaxosState) -> None:
    """A configuration that took effect may have made this follower a voter, or a learner."""
    voter = s.members.is_voter(s.node_id)
    if (s.role is Role.LEARNER and voter) or (s.role is Role.FOLLOWER and not voter):
        proposer.become_follower(s, s.leader)


def on_heartbeat(s: PaxosState, src: str, m: Heartbeat) -> None:
    if not follow(s, src, m.ballot):
        s.send(src, HeartbeatReply(ballot=m.ballot, beat=m.beat, ok=False, promised=s.promised))
        return
    s.commit = max(s.commit, min(m.commit, s.synced))
    s.send(src, HeartbeatReply(ballot=m.ballot, beat=m.beat, ok=True, match=s.synced))


def on_takeover(s: PaxosState, src: str, m: Takeover) -> None:
    """The leader hands over to this node: run phase 1 at once, past the other acceptors' stickiness."""
    if m.ballot >= s.promised and s.leader == src and s.members.is_voter(s.node_id):
        proposer.campaign(s, takeover=True)

"""Elections: timeouts, PreVote, granting votes, CheckQuorum, and which terms a message may bring.

Theory of operation.
- A voter that hears no leader for a randomized election timeout (drawn
  from [election_min, election_max) with the injected rng, §5.2) campaigns.
  With PreVote (thesis §9.6) it first asks, at its current term, whether
  peers would vote for it in the next one; only a majority of yeses makes it
  a real candidate that raises its term, so a server that was cut off and
  rejoins cannot force a healthy leader out by term inflation.
- A vote is granted at most once per term, and only to a candidate whose
  log is at least as up to date as ours (§5.4.1: last term, then last
  index). The vote is persisted (SaveStable) before the reply leaves.
- Leader stickiness (thesis §4.2.3): while a server has heard from a leader
  within the minimum election timeout, it ignores vote requests of a higher
  term, unless the leader itself asked for the election (TimeoutNow, §3.10).
- CheckQuorum (thesis §6.2): a leader that has not heard from a majority of
  voters within an election timeout steps down, so it stops accepting work
  it cannot commit and its followers are free to elect someone else.
- Terms: a message of a higher term makes us a follower of that term first
  (§5.1), except that pre-votes never change anyone's term. A message of a
  lower term is dropped; a stale leader is told our term so it steps down.

This module owns `votes`, `election_deadline` and `leader_contact`.
"""

from __future__ import annotations

from typing import Any

from keel.consensus import quorum

from keel_consensus_raft import roles
from keel_consensus_raft.messages import AppendEntries, Heartbeat, HeartbeatReply, InstallSnapshot, RequestVote, \
    TimeoutNow, VoteReply
from keel_consensus_raft.roles import Role
from keel_consensus_raft.state import RaftState

__all__ = ["accept_term", "campaign", "check_quorum", "on_request_vote", "on_tick", "on_vote_reply"]

FROM_LEADER = (AppendEntries, Heartbeat, InstallSnapshot, TimeoutNow)  # only a leader sends these


def on_tick(s: RaftState) -> None:
    """A follower or (pre-)candidate saw time pass: campaign once the election timeout ran out."""
    if s.now < s.election_deadline:
        return
    if not s.members.is_voter(s.node_id):
        s.reset_election_timer()  # learners and removed servers never campaign
        return
    campaign(s, pre_vote=s.options.pre_vote)


def campaign(s: RaftState, *, pre_vote: bool, transfer: bool = False) -> None:
    """Ask every voter for a (pre-)vote; our own answer counts at once."""
    if pre_vote:
        roles.become_pre_candidate(s)
        term = s.term + 1
    else:
        roles.become_candidate(s)
        term = s.term
    request = RequestVote(term=term, last_index=s.log.last_index, last_term=s.log.last_term, pre_vote=pre_vote,
                          transfer=transfer)
    for peer in s.voting_peers():
        s.send(peer, request)
    _tally(s, s.node_id, granted=True)


def _tally(s: RaftState, voter: str, *, granted: bool) -> None:
    voters = s.members.config.voters
    if voter not in voters:
        return
    s.votes.setdefault(voter, granted)
    yes = sum(s.votes.values())
    needed = quorum(len(voters))
    if yes >= needed:
        if s.role is Role.PRE_CANDIDATE:
            campaign(s, pre_vote=False)
        else:
            roles.become_leader(s)
    elif len(s.votes) - yes >= needed:
        roles.become_follower(s, s.term, None)


def accept_term(s: RaftState, src: str, message: Any) -> bool:
    """Apply the term rules to an incoming message; returns whether its handler should see it."""
    term = message.term
    if isinstance(message, RequestVote):
        if term > s.term and not message.transfer and s.in_lease():
            return False
        if message.pre_vote:
            return True
    elif isinstance(message, VoteReply) and message.pre_vote and message.granted:
        return True  # its term is the one we would campaign in, not the voter's
    if term > s.term:
        roles.become_follower(s, term, src if isinstance(message, FROM_LEADER) else None)
        return True
    if term < s.term:
        if isinstance(message, FROM_LEADER) and not isinstance(message, TimeoutNow):
            s.send(src, HeartbeatReply(term=s.term, beat=0))
        return isinstance(message, RequestVote)  # its handler answers with our term
    return True


def on_request_vote(s: RaftState, src: str, message: RequestVote) -> None:
    up_to_date = s.log.up_to_date(message.last_index, message.last_term)
    if message.pre_vote:
        granted = message.term > s.term and up_to_date
        s.send(src, VoteReply(term=message.term if granted else s.term, granted=granted, pre_vote=True))
        return
    granted = message.term == s.term and s.vote in (None, src) and up_to_date
    if granted:
        if s.vote is None:
            s.vote = src
            s.save_stable()
        s.reset_election_timer()
    s.send(src, VoteReply(term=s.term, granted=granted))


def on_vote_reply(s: RaftState, src: str, message: VoteReply) -> None:
    if message.pre_vote:
        # A grant must be for the term we would campaign in; a stale grant from
        # an earlier round is for a term we have since passed.
        if s.role is Role.PRE_CANDIDATE and (not message.granted or message.term == s.term + 1):
            _tally(s, src, granted=message.granted)
    elif s.role is Role.CANDIDATE and message.term == s.term:
        _tally(s, src, granted=message.granted)


def check_quorum(s: RaftState) -> None:
    """A leader, once per election timeout: step down unless a majority of voters was heard from."""
    if s.now < s.quorum_due:
        return
    s.quorum_due = s.now + s.settings.election_max
    voters = s.members.config.voters
    heard = sum(1 for v in voters if v == s.node_id or (v in s.progress and s.progress[v].active))
    for progress in s.progress.values():
        progress.active = False
    if s.options.check_quorum and heard < quorum(len(voters)):
        roles.become_follower(s, s.term, None)

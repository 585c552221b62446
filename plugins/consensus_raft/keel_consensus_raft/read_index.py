"""ReadIndex: linearizable reads without writing to the log (thesis §6.4).

Theory of operation. A read barrier asks the leader to prove two things
before the driver serves a read at index i:
1. i is at least every index committed before the read arrived. The
   leader's commit index is that, once it has committed an entry of its own
   term; a new leader has not (it may not know what its predecessor
   committed), so its reads wait for its NOOP to commit and take the commit
   index of that moment.
2. it was still the leader after the read arrived: it starts a heartbeat
   round (`beat` goes up by one; every message carries the round it was
   sent in and replies echo it) and waits until a majority of voters,
   itself included, has echoed that round or a later one. A deposed leader
   cannot gather that majority, because the voters that elected its
   successor have moved to a later term and ignore it.
Reads that arrive between two rounds share the next one, so a burst of
reads costs one round. A read still pending when the leader steps down is
never answered; the driver fails it when the role changes.

This module owns `reads` and `beat`.
"""

from __future__ import annotations

from keel.consensus import ReadReady, quorum_value
from keel.errors import NotLeader

from keel_consensus_raft.messages import Heartbeat
from keel_consensus_raft.roles import Role
from keel_consensus_raft.state import PendingRead, RaftState

__all__ = ["flush", "on_beat", "request"]


def request(s: RaftState, request: int) -> None:
    """Queue a read barrier.

    Raises:
        NotLeader: this server does not lead.
    """
    if s.role is not Role.LEADER:
        raise NotLeader(s.leader)
    s.reads.append(PendingRead(request=request, index=s.commit if s.committed_in_term() else None))


def flush(s: RaftState) -> None:
    """Start a round for reads that have none yet, once the leader may fix their index."""
    if s.role is not Role.LEADER or not s.reads or not s.committed_in_term():
        return
    waiting = [read for read in s.reads if read.beat is None]
    if waiting:
        s.beat += 1
        for read in waiting:
            read.beat = s.beat
            if read.index is None:
                read.index = s.commit
        for peer in s.voting_peers():
            progress = s.progress.get(peer)
            match = progress.match if progress is not None else 0
            s.send(peer, Heartbeat(term=s.term, commit=min(s.commit, match), beat=s.beat))
    _release(s)


def on_beat(s: RaftState, peer: str, beat: int) -> None:
    """`peer` echoed round `beat` in the current term."""
    progress = s.progress.get(peer)
    if progress is None or beat <= progress.acked_beat:
        return
    progress.acked_beat = beat
    _release(s)


def _release(s: RaftState) -> None:
    rounds = []
    for voter in s.members.config.voters:
        if voter == s.node_id:
            rounds.append(s.beat)
        else:
            progress = s.progress.get(voter)
            rounds.append(progress.acked_beat if progress is not None else 0)
    confirmed = quorum_value(rounds)
    still = []
    for read in s.reads:
        if read.beat is not None and read.beat <= confirmed and read.index is not None:
            s.out.read(ReadReady(read.request, read.index))
        else:
            still.append(read)
    s.reads = still

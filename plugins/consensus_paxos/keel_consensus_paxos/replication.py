"""Phase 2 at the leader: pipelined Accepts, what is chosen, heartbeats, read barriers, hand-over.

Theory of operation.
- Proposals only append to the leader's log (its own acceptance); `flush`,
  at every poll, sends each member the slots it lacks, many per Accept
  (`max_batch_entries`, `max_batch_bytes`) and up to `max_inflight` Accepts
  unanswered per member. So a burst of proposals costs one Accept per
  member and one fsync everywhere. A member that asks for a gap, or stays
  silent with Accepts in flight for two heartbeats, is sent again from its
  match. A member that needs slots below the log's start gets the snapshot.
- A slot is chosen once a quorum of voters accepted it under this ballot:
  every slot of this leader is proposed under its ballot, recovered ones
  included, so counting matches is enough (no older-term rule as in Raft).
  The leader counts its own acceptance once durable, through a note to
  itself the driver delivers after the fsync.
- Reads ("read barrier", not a lease: safety must not rest on clocks the
  simulator skews on purpose): a read takes the index max(commit, the
  leader's no-op) and the next heartbeat round; it is answered once a
  quorum has acknowledged that round at this ballot (so no higher ballot
  had been promised by a quorum when the read was asked) and that index is
  chosen.
- A leader that has heard no quorum for the maximum election timeout steps
  down; one that learns of a higher promise steps down at once.

This module owns `peers`, `own_match`, `own_noted`, `beat`, `reads`,
`transfer` and the leader's `commit`.
"""

from __future__ import annotations

from keel.consensus import Entry, EntryKind, ReadReady, quorum, quorum_value
from keel.errors import KeelError, NotLeader, Unavailable

from keel_consensus_paxos import proposer, snapshots
from keel_consensus_paxos.messages import Accept, Accepted, Heartbeat, HeartbeatReply, Takeover
from keel_consensus_paxos.state import PaxosState, Peer, Role, Transfer

__all__ = ["UNCHOSEN_BYTES", "after_commit", "flush", "on_accepted", "on_heartbeat_reply", "peer_caught_up",
           "propose", "read", "tick", "transfer"]


# bytes of entries a leader holds unchosen at most: what a new leader's phase 1 must be able to
# recover in one Promise (`proposer.PROMISE_BYTES`) even from an acceptor holding an old leader's too.
UNCHOSEN_BYTES = 4 * 2**20


def propose(s: PaxosState, kind: EntryKind, data: bytes) -> int:
    """Take the next slot for `data` in the leader's log; returns the slot.

    Raises:
        NotLeader: not leading, or handing over.
        Unavailable: the pipeline is full (a quorum is not keeping up).
    """
    if s.role is not Role.LEADER:
        raise NotLeader(s.leader)
    if s.transfer is not None:
        raise NotLeader(s.transfer.target)
    if s.uncommitted_bytes + len(data) > UNCHOSEN_BYTES:
        raise Unavailable(f"paxos: {s.log.last_index - s.commit} slots ({s.uncommitted_bytes} bytes) await a "
                          f"quorum, and {len(data)} more bytes would pass the limit of {UNCHOSEN_BYTES}; retry shortly")
    entry = Entry(index=s.log.last_index + 1, term=s.leader_ballot, kind=kind, data=data)
    s.log.append((entry,))
    s.uncommitted_bytes += len(data)
    s.synced = entry.index
    return entry.index


def tick(s: PaxosState) -> None:
    """Heartbeats, retransmission of stalled pipelines, check-quorum and the hand-over's deadline."""
    if s.now >= s.next_heartbeat:
        _heartbeat(s)
    stall = 2 * s.settings.heartbeat
    for node, peer in sorted(s.peers.items()):
        if s.now - peer.answered_at <= stall:
            continue
        if peer.snapshot_index:
            peer.answered_at = s.now
            snapshots.send_chunk(s, node, peer)  # again, from what it holds
        elif peer.inflight:
            peer.inflight.clear()
            peer.next = peer.match + 1
            peer.answered_at = s.now
    voters = s.voters()
    heard = sum(1 for v in voters if v == s.node_id or (v in s.peers and
                                                       s.now - s.peers[v].heard_at <= s.settings.election_max))
    if heard < quorum(len(voters)) and s.now - s.led_since > s.settings.election_max:
        proposer.become_follower(s, None)
        return
    if s.transfer is not None and s.now >= s.transfer.until:
        s.transfer = None  # the target did not take over in time: lead on


def _heartbeat(s: PaxosState) -> None:
    s.next_heartbeat = s.now + s.settings.heartbeat
    s.beat_sent = s.beat
    for node, peer in sorted(s.peers.items()):
        s.send(node, Heartbeat(ballot=s.leader_ballot, commit=min(s.commit, peer.match), beat=s.beat), early=True)


def flush(s: PaxosState) -> None:
    """Send what each member lacks, the note to itself, and a heartbeat round reads wait for."""
    if s.role is not Role.LEADER:
        return
    settings = s.settings
    for node, peer in sorted(s.peers.items()):
        if peer.snapshot_index:
            continue
        if peer.next < s.log.first_index:
            snapshots.start(s, node, peer)
            continue
        while len(peer.inflight) < settings.max_inflight and peer.next <= s.log.last_index:
            batch = s.log.batch(peer.next, settings.max_batch_entries, settings.max_batch_bytes)
            s.send(node, Accept(ballot=s.leader_ballot, first=peer.next, entries=batch, commit=s.commit), early=True)
            if not peer.inflight:
                peer.answered_at = s.now  # the stall clock starts with the first Accept in flight
            peer.inflight.append(batch[-1].index)
            peer.next = batch[-1].index + 1
    if s.log.last_index > s.own_noted:
        s.own_noted = s.log.last_index
        s.send(s.node_id, Accepted(ballot=s.leader_ballot, ok=True, match=s.own_noted))
    if s.beat > s.beat_sent:
        _heartbeat(s)
    _advance(s)


def on_accepted(s: PaxosState, src: str, m: Accepted) -> None:
    if s.role is not Role.LEADER:
        return
    if src == s.node_id:
        if m.ballot == s.leader_ballot:
            s.own_match = max(s.own_match, m.match)
            _advance(s)
        return
    peer = s.peers.get(src)
    if peer is None:
        return
    if not m.ok and m.promised > s.leader_ballot:
        _superseded(s, m.promised)
        return
    if m.ballot != s.leader_ballot:
        return
    peer.heard_at = peer.answered_at = s.now
    if m.ok:
        peer.match = max(peer.match, m.match)
        peer.next = max(peer.next, peer.match + 1)
        peer.inflight = [last for last in peer.inflight if last > m.match]
        _advance(s)
        _send_takeover(s)
    elif m.need:
        peer.match = min(peer.match, m.need - 1)
        peer.next = m.need
        peer.inflight.clear()


def on_heartbeat_reply(s: PaxosState, src: str, m: HeartbeatReply) -> None:
    if s.role is not Role.LEADER:
        return
    if not m.ok and m.promised > s.leader_ballot:
        _superseded(s, m.promised)
        return
    peer = s.peers.get(src)
    if peer is None or m.ballot != s.leader_ballot or not m.ok:
        return
    peer.heard_at = s.now
    peer.beat = max(peer.beat, m.beat)
    if m.match < peer.match and not peer.inflight and not peer.snapshot_index:
        # It holds less of this ballot's values than it acknowledged (it restarted): send again.
        peer.match = m.match
        peer.next = m.match + 1
    _release_reads(s)


def _superseded(s: PaxosState, promised: int) -> None:
    """An acceptor promised a higher ballot: this leader can no longer have its proposals chosen there."""
    s.highest_seen = max(s.highest_seen, promised)
    proposer.become_follower(s, None)


def _advance(s: PaxosState) -> None:
    """Raise the commit index to what a quorum of voters accepted under this ballot."""
    if s.role is not Role.LEADER:
        return
    matches = [s.own_match if v == s.node_id else (s.peers[v].match if v in s.peers else 0) for v in s.voters()]
    chosen = min(quorum_value(matches), s.log.last_index)
    if chosen > s.commit:
        s.uncommitted_bytes -= s.log.bytes_between(s.commit + 1, chosen)
        s.commit = chosen
        after_commit(s)
    _release_reads(s)


def read(s: PaxosState, request: int) -> None:
    """Ask for a read barrier; answered in `Ready.reads`, or never if leadership is lost first.

    Raises:
        NotLeader: not leading.
    """
    if s.role is not Role.LEADER:
        raise NotLeader(s.leader)
    if s.beat == s.beat_sent:
        s.beat += 1  # one new round for every read asked since the last heartbeat
    s.reads.append((request, s.beat, max(s.commit, s.ready_slot)))
    _release_reads(s)


def _release_reads(s: PaxosState) -> None:
    if not s.reads:
        return
    beats = [s.beat if v == s.node_id else (s.peers[v].beat if v in s.peers else 0) for v in s.voters()]
    confirmed = quorum_value(beats)
    waiting = []
    for request, beat, index in s.reads:
        if beat <= confirmed and index <= s.commit:
            s.out.read(ReadReady(request, index))
        else:
            waiting.append((request, beat, index))
    s.reads = waiting


def transfer(s: PaxosState, target: str | None) -> None:
    """Hand leadership to `target` (or the most caught-up voter); proposals pause meanwhile.

    Raises:
        NotLeader: not leading.
        KeelError: the target is not another voter.
    """
    if s.role is not Role.LEADER:
        raise NotLeader(s.leader)
    others = s.voting_peers()
    if target is None:
        if not others:
            return
        target = max(others, key=lambda v: (s.peers[v].match if v in s.peers else 0, v))
    if target not in others:
        raise KeelError(f"paxos transfer: {target!r} is not another voter (voters {list(s.voters())})")
    s.transfer = Transfer(target=target, until=s.now + s.settings.election_max)
    _send_takeover(s)


def _send_takeover(s: PaxosState) -> None:
    t = s.transfer
    if t is None or t.sent:
        return
    peer = s.peers.get(t.target)
    if peer is not None and peer.match >= s.log.last_index:
        t.sent = True
        s.send(t.target, Takeover(ballot=s.leader_ballot), early=True)


def after_commit(s: PaxosState) -> None:
    """A hand-over waits for its target to hold everything; a leader whose removal is chosen steps down."""
    _send_takeover(s)
    proposer.sync_peers(s)  # a node whose removal is now chosen is sent no more
    if s.members.latest_index <= s.commit and not s.members.is_voter(s.node_id):
        ready = sorted(v for v in s.voting_peers() if v in s.peers and s.peers[v].match >= s.log.last_index)
        if ready:
            s.send(ready[0], Takeover(ballot=s.leader_ballot), early=True)
        proposer.become_follower(s, None)


def peer_caught_up(s: PaxosState, node: str) -> bool:
    peer: Peer | None = s.peers.get(node)
    return peer is not None and peer.match + s.options.promote_lag >= s.log.last_index

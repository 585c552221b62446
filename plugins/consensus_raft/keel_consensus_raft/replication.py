"""Log replication: the follower's append rule, the leader's sending and its commit rule.

Theory of operation.
- Follower (§5.3): an AppendEntries is accepted only if our log holds
  (prev_index, prev_term); then entries already present with the same term
  are skipped, the first conflicting one and everything after it is removed
  (`TruncateFrom`, never below the commit index: a committed entry never
  conflicts) and the rest appended. The commit index rises to the leader's,
  capped at the last entry this message vouched for. The reply leaves only
  after the Ready that persists the entries, so a success is a promise the
  entries survive a crash. A rejection carries a hint that lets the leader
  skip a whole conflicting term per round trip.
- Leader, sending: between polls, proposals only append to the log; at
  `poll` the leader sends each follower what its `Progress` allows (one
  probe, or up to `max_inflight` pipelined batches of at most
  `max_batch_entries` entries and `max_batch_bytes` bytes), so many
  proposals travel in one message and one fsync. Heartbeats carry no log
  check and a commit index capped at what the follower is known to hold, so
  they are safe however the network reorders them.
- Leader, counting itself: the leader's own entries count towards a majority
  only once durable. It sends itself an AppendReply alongside its
  appends; the driver hands such a note back only after the Ready's persist
  is durable. A note that never comes back (a crash, a lossy loopback) is
  superseded by the next, and repeated every heartbeat until one arrives.
- Leader, committing (§5.4.2): the commit index moves to the highest index a
  majority of voters holds, but only if that entry is of the current term;
  earlier terms' entries commit indirectly, under it (figure 8 of the paper
  shows why counting replicas of an old term is unsafe).

This module owns `progress`, `self_acked`, `heartbeat_due` and `commit` on
the leader.
"""

from __future__ import annotations

from keel.consensus import quorum_value

from keel_consensus_raft import membership, read_index, roles, snapshots, transfer
from keel_consensus_raft.messages import AppendEntries, AppendReply, Heartbeat, HeartbeatReply, SnapshotReply
from keel_consensus_raft.progress import Mode, Progress
from keel_consensus_raft.roles import Role
from keel_consensus_raft.state import RaftState

__all__ = ["flush", "heartbeat", "on_append", "on_append_reply", "on_heartbeat", "on_heartbeat_reply", "on_snapshot_reply"]

# heartbeat intervals a pipeline may go without an acknowledgement while
# entries are outstanding before the leader presumes a message lost and
# probes again from the follower's match; three allows for replies that are
# merely slow without leaving a real loss unrepaired for long.
STALL_HEARTBEATS = 3


# --- follower ----------------------------------------------------------------


def on_append(s: RaftState, src: str, message: AppendEntries) -> None:
    """Entries from the leader of our term."""
    if s.role is Role.LEADER:
        raise AssertionError(f"raft {s.node_id}: another leader ({src}) in term {s.term}")
    if any(e.index != message.prev_index + 1 + i for i, e in enumerate(message.entries)) \
            or not s.members.readable(message.entries):
        return  # entries that do not follow prev_index, or a configuration that does not decode: a broken peer
    roles.follow(s, src)
    s.send(src, _append(s, message))


def _append(s: RaftState, message: AppendEntries) -> AppendReply:
    log = s.log
    prev_index, prev_term, entries = message.prev_index, message.prev_term, message.entries
    if prev_index < log.snapshot.index:
        # Our snapshot holds committed entries, which every leader has too:
        # check from the snapshot's end instead.
        entries = tuple(e for e in entries if e.index > log.snapshot.index)
        prev_index, prev_term = log.snapshot.index, log.snapshot.term
    if log.term_at(prev_index) != prev_term:
        hint = log.conflict_hint(message.prev_index, message.prev_term)
        return AppendReply(term=s.term, success=False, index=message.prev_index, hint_index=hint,
                           hint_term=log.term_at(hint) or 0, beat=message.beat)
    fresh: tuple = ()  # the entries from the first one we lack or that conflicts
    for offset, entry in enumerate(entries):
        if log.term_at(entry.index) != entry.term:
            fresh = entries[offset:]
            break
    if fresh:
        first = fresh[0].index
        if first <= log.last_index:
            if first <= s.commit:
                raise AssertionError(f"raft {s.node_id}: entry {first} conflicts but is committed ({s.commit})")
            log.truncate_from(first)
            s.members.truncated(first)
        log.append(fresh)
        s.members.appended(fresh)
        roles.announce_role(s)
    last_new = prev_index + len(entries)
    s.commit = max(s.commit, min(message.commit, last_new))
    return AppendReply(term=s.term, success=True, index=last_new, beat=message.beat)


def on_heartbeat(s: RaftState, src: str, message: Heartbeat) -> None:
    if s.role is Role.LEADER:
        raise AssertionError(f"raft {s.node_id}: another leader ({src}) in term {s.term}")
    roles.follow(s, src)
    # The leader caps `commit` at what it knows we hold, so no log check is needed.
    s.commit = max(s.commit, min(message.commit, s.log.last_index))
    s.send(src, HeartbeatReply(term=s.term, beat=message.beat))


# --- leader ------------------------------------------------------------------


def _heard_from(s: RaftState, src: str) -> Progress | None:
    """`src`'s progress if we lead and replicate to it; a reply from a peer marks it active for CheckQuorum."""
    if s.role is not Role.LEADER:
        return None
    progress = s.progress.get(src)
    if progress is not None and src != s.node_id:
        progress.active = True
    return progress


def on_append_reply(s: RaftState, src: str, message: AppendReply) -> None:
    progress = _heard_from(s, src)
    if progress is None:
        return
    if src == s.node_id:
        if message.success and message.index > progress.match:
            progress.match = message.index  # our own entries are durable up to here
            _advance_commit(s)
        return
    read_index.on_beat(s, src, message.beat)
    if message.success:
        if progress.acked(message.index):
            _advance_commit(s)
            transfer.on_progress(s, src)
    else:
        guess = s.log.conflict_hint(message.hint_index, message.hint_term) + 1
        progress.rejected(message.index, guess)


def on_heartbeat_reply(s: RaftState, src: str, message: HeartbeatReply) -> None:
    if _heard_from(s, src) is not None:
        read_index.on_beat(s, src, message.beat)


def on_snapshot_reply(s: RaftState, src: str, message: SnapshotReply) -> None:
    progress = _heard_from(s, src)
    if progress is not None and progress.chunk_acked(message.index, message.offset, message.done) and message.done:
        _advance_commit(s)
        transfer.on_progress(s, src)


def _advance_commit(s: RaftState) -> None:
    voters = s.members.config.voters
    index = quorum_value([s.progress[v].match if v in s.progress else 0 for v in voters])
    if index > s.commit and s.log.term_at(index) == s.term:
        s.commit = index
        membership.after_commit(s)


def heartbeat(s: RaftState) -> None:
    """A leader's tick: every `heartbeat` seconds, tell every member it still leads."""
    if s.now < s.heartbeat_due:
        return
    s.heartbeat_due = s.now + s.settings.heartbeat
    for peer in s.peers():
        progress = s.progress.get(peer)
        if progress is None:
            continue
        progress.heartbeat_tick(STALL_HEARTBEATS)
        s.send(peer, Heartbeat(term=s.term, commit=min(s.commit, progress.match), beat=s.beat), early=True)
    if s.progress[s.node_id].match < s.log.last_index:
        s.self_acked = 0  # our durability note may have been lost: `flush` sends another
    transfer.on_heartbeat(s)


def flush(s: RaftState) -> None:
    """At poll: send every member what its progress allows, and note our own durable end."""
    if s.role is not Role.LEADER:
        return
    for peer in s.peers():
        progress = s.progress.get(peer)
        if progress is not None:
            _send(s, peer, progress)
    if s.log.last_index > s.self_acked:
        s.self_acked = s.log.last_index
        s.send(s.node_id, AppendReply(term=s.term, success=True, index=s.self_acked))


def _send(s: RaftState, peer: str, progress: Progress) -> None:
    settings = s.settings
    while progress.can_send(settings.max_inflight):
        if progress.mode is Mode.SNAPSHOT:
            snapshots.send_chunk(s, peer, progress)
            return
        prev = progress.next - 1
        prev_term = s.log.term_at(prev)
        if prev_term is None:  # compacted away: only the snapshot can bring this follower up
            if not snapshots.start(s, progress):
                return
            continue
        entries = s.log.batch(progress.next, settings.max_batch_entries, settings.max_batch_bytes)
        if not entries and progress.mode is Mode.REPLICATE:
            return  # caught up; heartbeats carry the commit index
        s.send(peer, AppendEntries(term=s.term, prev_index=prev, prev_term=prev_term, entries=entries,
                                   commit=s.commit, beat=s.beat), early=True)
        progress.sent(entries[-1].index if entries else prev)

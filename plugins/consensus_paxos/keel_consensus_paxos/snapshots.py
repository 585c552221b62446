"""Snapshots: compacting the log, and catching up a member from the leader's snapshot.

Theory of operation.
- The driver snapshots its state machine at a slot it has applied and calls
  `snapshot_taken`; the engine fills in the ballot of that slot and the
  membership as of it, compacts its log (a `CompactTo`) and keeps the data
  to ship. After a restart the driver hands back the data of the snapshot
  the engine recovered at, which is only stored.
- A member that needs slots below the leader's log start gets the snapshot
  in chunks of `options.snapshot_chunk` bytes, one in flight; each answer
  says how many bytes it holds, so a lost chunk is sent again from there
  (after two heartbeats without an answer), and a receiver that restarted
  and holds nothing gets the snapshot from its start.
- The receiver checks the ballot as for an Accept, assembles the chunks and,
  on the last, installs the snapshot unless its commit index already covers
  it. Every slot up to the snapshot is chosen and held (as the snapshot), so
  `commit` and `synced` rise to its index. The answer leaves after the
  `Ready` that persists the compaction.

This module owns `snapshot_data` and `incoming`.
"""

from __future__ import annotations

from keel.consensus import SnapshotMeta, SnapshotToInstall

from keel_consensus_paxos import acceptor
from keel_consensus_paxos.messages import InstallSnapshot, SnapshotReply
from keel_consensus_paxos.state import Incoming, PaxosState, Peer, Role

__all__ = ["on_install_snapshot", "on_snapshot_reply", "send_chunk", "start", "taken"]


def taken(s: PaxosState, meta: SnapshotMeta, data: bytes) -> None:
    """The driver saved a snapshot at `meta.index`: compact the log below it and keep `data`.

    Raises:
        ValueError: the index is beyond what the engine handed out as committed.
    """
    if meta.index > s.applied:
        raise ValueError(f"paxos snapshot: slot {meta.index} is beyond the last applied slot {s.applied}")
    snapshot = s.log.snapshot
    if meta.index < snapshot.index:
        return
    if meta.index == snapshot.index:
        if meta.index > 0:
            s.snapshot_data = bytes(data)
        return
    ballot = s.log.term_at(meta.index)
    full = SnapshotMeta(index=meta.index, term=ballot or 0, config=s.members.config_at(meta.index).encode())
    s.log.compact_to(full)
    s.members.compacted(full, s.log.last_index)
    s.snapshot_data = bytes(data)


def start(s: PaxosState, node: str, peer: Peer) -> None:
    """Begin shipping the snapshot to `node` (nothing while there is no data to ship)."""
    if s.snapshot_data is None:
        return
    peer.snapshot_index, peer.offset = s.log.snapshot.index, 0
    peer.inflight.clear()
    peer.answered_at = s.now
    send_chunk(s, node, peer)


def send_chunk(s: PaxosState, node: str, peer: Peer) -> None:
    """Send the chunk from the bytes `node` last said it holds (again, if no answer came in time)."""
    meta, data = s.log.snapshot, s.snapshot_data
    if data is None:
        return
    if peer.snapshot_index != meta.index:
        peer.snapshot_index, peer.offset = meta.index, 0  # a newer snapshot replaced the one being shipped
    offset = min(peer.offset, len(data))
    chunk = data[offset : offset + s.options.snapshot_chunk]
    done = offset + len(chunk) >= len(data)
    s.send(node, InstallSnapshot(ballot=s.leader_ballot, meta=meta, offset=offset, data=chunk, done=done), early=True)


def on_snapshot_reply(s: PaxosState, src: str, m: SnapshotReply) -> None:
    peer = s.peers.get(src)
    if s.role is not Role.LEADER or peer is None or m.ballot != s.leader_ballot or not peer.snapshot_index:
        return
    peer.heard_at = peer.answered_at = s.now
    if m.done:
        peer.match = max(peer.match, m.index)
        peer.next = max(peer.next, m.index + 1)
        peer.snapshot_index = peer.offset = 0
        return
    if m.index == peer.snapshot_index:
        # What it holds, even if less than before (it restarted): the next chunk starts there.
        peer.offset = m.offset
        send_chunk(s, src, peer)



def on_install_snapshot(s: PaxosState, src: str, m: InstallSnapshot) -> None:
    if not s.members.readable(snapshot=m.meta):
        return  # a configuration that does not decode: a broken peer; refuse its message, stay up
    if not acceptor.follow(s, src, m.ballot):
        return  # the next heartbeat's refusal tells the old leader
    meta = m.meta
    if meta.index <= s.commit:
        s.send(src, SnapshotReply(ballot=m.ballot, index=meta.index, offset=m.offset + len(m.data), done=True))
        return
    incoming = s.incoming
    if m.offset == 0:
        incoming = s.incoming = Incoming(index=meta.index, data=bytearray())
    if incoming is None or incoming.index != meta.index or len(incoming.data) != m.offset:
        held = len(incoming.data) if incoming is not None and incoming.index == meta.index else 0
        s.send(src, SnapshotReply(ballot=m.ballot, index=meta.index, offset=held, done=False))
        return
    incoming.data += m.data
    if not m.done:
        s.send(src, SnapshotReply(ballot=m.ballot, index=meta.index, offset=len(incoming.data), done=False))
        return
    data = bytes(incoming.data)
    s.incoming = None
    # Keep every later slot this acceptor accepted, whatever it holds at the snapshot's slot: one of
    # them may belong to a quorum that chose it (a Raft follower's suffix there would be uncommitted).
    s.log.compact_to(meta, keep_suffix=True)
    s.members.compacted(meta, s.log.last_index)
    s.out.install(SnapshotToInstall(meta, data))
    s.snapshot_data = data
    s.commit = s.applied = meta.index
    s.synced = max(meta.index, min(s.synced, s.log.last_index))  # the log keeps a suffix only if it continues
    acceptor.role_from_config(s)
    s.send(src, SnapshotReply(ballot=m.ballot, index=meta.index, offset=len(data), done=True))

"""Snapshots: compacting the log, and shipping a snapshot to a follower that needs it (§7).

Theory of operation.
- The driver snapshots its state machine at an index it has applied and
  calls `snapshot_taken`. The engine fills in the term and membership as of
  that index (the driver only knows the state machine), compacts its log
  (a `CompactTo` in the next Ready) and keeps the data to ship.
- After a restart the engine knows its snapshot's meta but not its data;
  the driver hands the data over with `snapshot_taken` again (same index),
  which only stores it.
- A leader whose follower needs entries below its log's start switches that
  follower to SNAPSHOT mode and sends InstallSnapshot chunks of at most
  `options.snapshot_chunk` bytes, one in flight at a time; the follower
  answers each with the bytes it holds, so a lost or reordered chunk is
  resent from there. A new snapshot taken mid-transfer restarts it.
- A follower assembles the chunks and, on the last, installs the snapshot
  unless its commit index already covers it: `CompactTo` (keeping log
  entries after the snapshot if they continue its history), and
  `SnapshotToInstall` for the driver, whose committed entries continue
  after the snapshot's index. It answers only after the Ready that persists
  this, so the leader never counts a snapshot that a crash could lose.

This module owns `snapshot_data` and `incoming`.
"""

from __future__ import annotations

from keel.consensus import SnapshotMeta, SnapshotToInstall

from keel_consensus_raft import roles
from keel_consensus_raft.messages import InstallSnapshot, SnapshotReply
from keel_consensus_raft.progress import Progress
from keel_consensus_raft.roles import Role
from keel_consensus_raft.state import IncomingSnapshot, RaftState

__all__ = ["on_install_snapshot", "send_chunk", "start", "taken"]


def taken(s: RaftState, meta: SnapshotMeta, data: bytes) -> None:
    """The driver saved a snapshot at `meta.index`: compact the log below it and keep `data`.

    Raises:
        ValueError: the index is beyond what the engine handed out as
            committed, or the term does not match the log's.
    """
    if meta.index > s.applied:
        raise ValueError(f"raft snapshot: index {meta.index} is beyond the last applied index {s.applied}")
    snapshot = s.log.snapshot
    if meta.index < snapshot.index:
        return  # older than what we compacted to already
    if meta.index == snapshot.index:
        if meta.index > 0:
            s.snapshot_data = bytes(data)  # after a restart: the data of the snapshot we recovered at
        return
    term = s.log.term_at(meta.index)
    if meta.term not in (0, term):
        raise ValueError(f"raft snapshot: index {meta.index} has term {term} in the log, not {meta.term}")
    full = SnapshotMeta(index=meta.index, term=term or 0, config=s.members.config_at(meta.index).encode())
    s.log.compact_to(full)
    s.members.compacted(full, s.log.last_index)
    s.snapshot_data = bytes(data)


def start(s: RaftState, progress: Progress) -> bool:
    """Switch a follower to SNAPSHOT mode; False while there is no snapshot data to ship."""
    if s.snapshot_data is None:
        return False
    progress.become_snapshot(s.log.snapshot.index)
    return True


def send_chunk(s: RaftState, peer: str, progress: Progress) -> None:
    """Send the chunk the follower needs next."""
    meta, data = s.log.snapshot, s.snapshot_data
    if data is None:
        return
    if progress.snapshot_index != meta.index:
        progress.become_snapshot(meta.index)  # a newer snapshot replaced the one being shipped
    offset = min(progress.offset, len(data))
    chunk = data[offset : offset + s.options.snapshot_chunk]
    done = offset + len(chunk) >= len(data)
    s.send(peer, InstallSnapshot(term=s.term, meta=meta, offset=offset, data=chunk, done=done))
    progress.paused = True


def on_install_snapshot(s: RaftState, src: str, message: InstallSnapshot) -> None:
    """A chunk from the leader of our term."""
    if s.role is Role.LEADER:
        raise AssertionError(f"raft {s.node_id}: another leader ({src}) in term {s.term}")
    if not s.members.readable(snapshot=message.meta):
        return  # a configuration that does not decode: a broken peer; refuse its message, stay up
    roles.follow(s, src)
    meta = message.meta

    def reply(offset: int, done: bool) -> None:
        s.send(src, SnapshotReply(term=s.term, index=meta.index, offset=offset, done=done))

    if meta.index <= s.commit:
        s.incoming = None
        reply(0, True)  # everything it covers is committed here already
        return
    if message.offset == 0:
        s.incoming = IncomingSnapshot(meta, bytearray())
    incoming = s.incoming
    if incoming is None or incoming.meta != meta or message.offset != len(incoming.data):
        held = len(incoming.data) if incoming is not None and incoming.meta == meta else 0
        reply(held, False)  # out of order, or another snapshot: say where to resume
        return
    incoming.data += message.data
    if not message.done:
        reply(len(incoming.data), False)
        return
    s.incoming = None
    _install(s, meta, bytes(incoming.data))
    reply(len(incoming.data), True)


def _install(s: RaftState, meta: SnapshotMeta, data: bytes) -> None:
    s.log.compact_to(meta)
    s.members.compacted(meta, s.log.last_index)
    s.snapshot_data = data
    s.commit = meta.index
    s.applied = meta.index  # the driver restarts its state machine from the snapshot
    s.out.install(SnapshotToInstall(meta, data))
    roles.announce_role(s)

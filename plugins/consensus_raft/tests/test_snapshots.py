"""Snapshots: log compaction and InstallSnapshot (Raft §7)."""

from __future__ import annotations

import pytest

from keel import wire
from keel.consensus import CompactTo, SnapshotMeta, SnapshotToInstall

from keel_consensus_raft import Configuration, RaftOptions
from keel_consensus_raft.messages import InstallSnapshot, SnapshotReply

from .harness import HEARTBEAT, Net

CHUNK = 1024  # bytes per InstallSnapshot in these tests


def compacts(net: Net, node: str) -> list[SnapshotMeta]:
    return [op.snapshot for op in net.persisted(node) if isinstance(op, CompactTo)]


def lagging_cluster(entries: int = 20) -> Net:
    """n1 leads with `entries` commands committed; n3 was cut off throughout."""
    net = Net(options=RaftOptions(snapshot_chunk=CHUNK))
    net.elect("n1")
    net.cut |= {("n1", "n3"), ("n3", "n1")}
    net.propose("n1", *[f"k{i}=v".encode() for i in range(entries)])
    net.run(HEARTBEAT)
    return net


def test_a_snapshot_compacts_the_log_with_term_and_membership_filled_in():
    """Raft §7: a snapshot replaces the entries up to its index, keeping the last included index, term and configuration."""
    net = lagging_cluster()
    net.forget()
    net.engine("n1").snapshot_taken(SnapshotMeta(index=10, term=0), b"state")
    net.settle()
    expected = SnapshotMeta(index=10, term=1, config=Configuration(voters=("n1", "n2", "n3")).encode())
    assert compacts(net, "n1") == [expected]
    log = net.engine("n1").log
    assert (log.snapshot, log.first_index, log.last_index) == (expected, 11, 21)


def test_a_snapshot_beyond_what_was_applied_is_refused():
    """Engine contract: the driver can only snapshot what the engine handed it as committed."""
    net = lagging_cluster()
    with pytest.raises(ValueError, match="beyond the last applied index"):
        net.engine("n1").snapshot_taken(SnapshotMeta(index=99, term=1), b"state")


def test_a_follower_behind_the_log_gets_the_snapshot_in_chunks_under_the_frame_limit():
    """Raft §7: a leader sends InstallSnapshot to a follower that needs compacted entries, split into chunks."""
    net = lagging_cluster()
    data = bytes(range(256)) * 20  # 5120 bytes: five chunks
    net.engine("n1").snapshot_taken(SnapshotMeta(index=15, term=1), data)
    net.settle()
    net.cut.clear()
    net.run(5 * HEARTBEAT)
    chunks = [m for dst, m in net.sent("n1", InstallSnapshot) if dst == "n3"]
    assert [m.offset for m in chunks] == [0, 1024, 2048, 3072, 4096]
    assert [m.done for m in chunks] == [False] * 4 + [True]
    assert all(len(wire.encode_frame(m, max_frame=CHUNK + 512)) <= CHUNK + 512 for m in chunks)
    installs = [r.install for r in net.readies["n3"] if r.install is not None]
    assert installs == [SnapshotToInstall(net.engine("n1").log.snapshot, data)]
    assert net.engine("n1").log.snapshot in compacts(net, "n3")
    assert [e.index for e in net.machines["n3"].applied] == [1, 16, 17, 18, 19, 20, 21]  # the NOOP came before the cut
    assert net.engine("n3").log.last_index == net.engine("n1").log.last_index


def test_a_lost_chunk_is_sent_again_from_where_the_follower_stands():
    """Raft §7 under loss: the follower reports the bytes it holds, so a lost chunk is resent, not the whole snapshot."""
    net = lagging_cluster()
    data = bytes(3000)
    net.engine("n1").snapshot_taken(SnapshotMeta(index=15, term=1), data)
    net.settle()
    net.cut.clear()
    lost = []

    def lose_second_chunk(src, dst, msg):
        if isinstance(msg, InstallSnapshot) and msg.offset == CHUNK and not lost:
            lost.append(msg)
            return None
        return msg

    net.rewrite = lose_second_chunk
    net.run(8 * HEARTBEAT)
    assert lost
    offsets = [m.offset for dst, m in net.sent("n1", InstallSnapshot) if dst == "n3"]
    assert offsets.count(0) == 1 and offsets.count(CHUNK) == 2
    assert [r.install.data for r in net.readies["n3"] if r.install is not None] == [data]


def test_a_follower_keeps_log_entries_that_continue_the_snapshot():
    """Raft §7: if the follower's log holds the snapshot's last entry, entries after it are kept."""
    net = Net()
    net.load("n2", term=1, log=[(i, 1) for i in range(1, 11)])
    net.tick(0.0)
    meta = SnapshotMeta(index=5, term=1, config=Configuration(voters=("n1", "n2", "n3")).encode())
    net.engine("n2").receive("n1", InstallSnapshot(term=1, meta=meta, offset=0, data=b"s", done=True))
    ready = net.poll("n2")
    assert ready.install == SnapshotToInstall(meta, b"s")
    log = net.engine("n2").log
    assert (log.first_index, log.last_index) == (6, 10)
    assert [out.message for out in ready.send] == [SnapshotReply(term=1, index=5, offset=1, done=True)]


def test_a_follower_whose_log_disagrees_with_the_snapshot_replaces_it_entirely():
    """Raft §7: otherwise the follower discards its whole log; the snapshot supersedes it."""
    net = Net()
    net.load("n2", term=2, log=[(1, 1), (2, 2), (3, 2)])
    net.tick(0.0)
    meta = SnapshotMeta(index=2, term=3, config=Configuration(voters=("n1", "n2", "n3")).encode())
    net.engine("n2").receive("n1", InstallSnapshot(term=3, meta=meta, offset=0, data=b"s", done=True))
    net.poll("n2")
    log = net.engine("n2").log
    assert (log.snapshot, log.first_index, log.last_index) == (meta, 3, 2)


def test_a_snapshot_the_commit_index_already_covers_is_acknowledged_but_not_installed():
    """Raft §7: a snapshot describing a prefix the follower already committed changes nothing."""
    net = lagging_cluster()
    net.engine("n2").receive("n1", InstallSnapshot(term=1, meta=SnapshotMeta(5, 1), offset=0, data=b"s", done=True))
    ready = net.poll("n2")
    assert ready.install is None and not compacts(net, "n2")
    assert [out.message for out in ready.send] == [SnapshotReply(term=1, index=5, offset=0, done=True)]

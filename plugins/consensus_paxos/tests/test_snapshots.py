"""Snapshots: compacting the log, and catching a member up from the leader's snapshot in chunks."""

from __future__ import annotations

import json

import pytest

from keel.consensus import CompactTo, SnapshotMeta

from keel_consensus_paxos import PaxosOptions
from keel_consensus_paxos.messages import Configuration, InstallSnapshot, SnapshotReply

from .harness import HEARTBEAT, Net

CHUNK = 64  # bytes per InstallSnapshot in these tests: a snapshot of 20 commands takes several


def compacts(net: Net, node: str) -> list[SnapshotMeta]:
    return [op.snapshot for op in net.persisted(node, CompactTo)]


def lagging_cluster(commands: int = 20) -> Net:
    """n1 leads with `commands` commands chosen (slots 2..), n3 was cut off throughout."""
    net = Net(options=PaxosOptions(snapshot_chunk=CHUNK))
    net.elect("n1")
    net.cut |= {("n1", "n3"), ("n3", "n1")}
    net.propose("n1", *[f"k{i}=v".encode() for i in range(commands)])
    net.run(2 * HEARTBEAT)
    return net


def test_a_snapshot_compacts_the_log_with_ballot_and_membership_filled_in():
    """A snapshot stands for every chosen slot up to its index; it records that slot's ballot and membership."""
    net = lagging_cluster()
    net.forget()
    meta = net.snapshot("n1")
    expected = SnapshotMeta(index=meta.index, term=net.ballot("n1"), config=Configuration.bootstrap(net.ids).encode())
    assert compacts(net, "n1") == [expected]
    log = net.engine("n1").log
    assert (log.snapshot, log.first_index, log.last_index) == (expected, 22, 21)


def test_a_snapshot_beyond_what_was_applied_is_refused():
    """Engine contract: the driver can only snapshot what the engine handed it as committed."""
    net = lagging_cluster()
    with pytest.raises(ValueError, match="beyond the last applied slot"):
        net.engine("n1").snapshot_taken(SnapshotMeta(index=99, term=0), b"state")


def test_a_member_behind_the_log_start_gets_the_snapshot_in_chunks_and_installs_it():
    """Multi-Paxos catch-up: chosen slots compacted away reach a member as the snapshot standing for them."""
    net = lagging_cluster()
    meta = net.snapshot("n1")
    data = net.snapshots["n1"][1]
    net.cut.clear()
    net.forget()
    net.propose("n1", b"after=1")
    net.run(4 * HEARTBEAT)
    chunks = [m for dst, m in net.sent("n1", InstallSnapshot) if dst == "n3"]
    assert [m.offset for m in chunks] == list(range(0, len(data), CHUNK))
    assert all(len(m.data) <= CHUNK for m in chunks) and [m.done for m in chunks][-1]
    installs = [r.install for r in net.readies["n3"] if r.install is not None]
    assert [(i.meta.index, i.data) for i in installs] == [(meta.index, data)]
    assert net.machines["n3"].state == json.loads(data) + ["after=1"]
    assert net.engine("n3").status().commit_index == net.engine("n1").status().commit_index


def test_a_lost_chunk_is_sent_again_from_what_the_member_holds():
    """`snapshots` theory: each SnapshotReply says how many bytes the member holds, "so a lost chunk is sent again
    from there"; were shipping to start over from byte 0 after every loss, a snapshot of many chunks over a lossy
    link would seldom arrive whole."""
    net = lagging_cluster()
    net.snapshot("n1")
    net.cut.clear()
    lost = []

    def lose_second_chunk(src, dst, msg):
        if isinstance(msg, InstallSnapshot) and msg.offset == CHUNK and not lost:
            lost.append(msg)
            return None
        return msg

    net.rewrite = lose_second_chunk
    net.propose("n1", b"after=1")
    net.run(6 * HEARTBEAT)
    assert lost
    offsets = [m.offset for dst, m in net.sent("n1", InstallSnapshot) if dst == "n3"]
    assert offsets.count(0) == 1 and offsets.count(CHUNK) == 2
    assert net.machines["n3"].commands()[-1:] == [b"after=1"]


def test_a_member_whose_commit_already_covers_the_snapshot_does_not_install_it():
    """Installing a snapshot at or below what was applied would undo applied slots (engine contract, `install`)."""
    net = lagging_cluster()
    meta = net.snapshot("n1")
    net.forget()
    net.engine("n2").receive("n1", InstallSnapshot(ballot=net.ballot("n1"), meta=net.engine("n1").log.snapshot,
                                                   offset=0, data=b"{}", done=True))
    ready = net.poll("n2")
    assert ready.install is None
    assert [m for _, m in net.sent("n2", SnapshotReply)] == [
        SnapshotReply(ballot=net.ballot("n1"), index=meta.index, offset=2, done=True)]


def test_a_node_restarted_from_a_snapshot_applies_nothing_twice():
    """Engine contract: after a restart the commit index starts at the snapshot, and only later slots are handed out."""
    net = lagging_cluster()
    net.propose("n1", b"after=1")
    net.run(2 * HEARTBEAT)
    meta = net.snapshot("n2")
    net.crash("n2")
    net.start("n2")
    assert net.engine("n2").status().commit_index == meta.index
    net.propose("n1", b"after=2")
    net.run(3 * HEARTBEAT)
    restored = net.machines["n2"]
    assert [e.index for e in restored.applied] == [meta.index + 1]
    assert restored.state == net.machines["n1"].state

"""The core runtime in process: three nodes over the memory transport, real disks, the real clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from keel import plugins
from keel.consensus import EngineSettings
from keel.contract import Kind
from keel.core.api import Batch, Call, CoreStatus, Put, PutReply, Range, RangeReply, Watch
from keel.transport import ErrorReply
from keel.core.runtime import CoreRuntime
from keel.errors import NotLeader, StorageError
from keel.node import Node

from tests.test_node import make_config

IDS = ["a", "b", "c"]
ELECTION_WAIT_S = 10.0  # seconds; an election takes well under one on an idle machine


async def leader_of(nodes: list[Node]) -> Node:
    with trio.fail_after(ELECTION_WAIT_S):
        while True:
            for node in nodes:
                if node.core is not None and node.core.server is not None and node.core.server.leading:
                    return node
            await trio.sleep(0.02)


async def run_cluster(tmp_path: Path, network: str, body: Any, **runtime: Any) -> None:
    loaded = plugins.load()
    nodes = [Node(make_config(tmp_path, n, IDS, network=network), loaded) for n in IDS]
    for node in nodes:
        assert node.core is not None
        for name, value in runtime.items():
            setattr(node.core, name, value)
    async with trio.open_nursery() as nursery:
        for node in nodes:
            await nursery.start(node.run)
        try:
            await body(nodes)
        finally:
            for node in nodes:
                node.stop()


def put(client: str, seq: int, key: bytes, value: bytes) -> Call:
    return Call(client, seq, seq - 1, Put(key, value))


async def test_a_write_at_the_leader_is_read_back_and_a_follower_redirects(tmp_path: Path) -> None:
    async def body(nodes: list[Node]) -> None:
        leader = await leader_of(nodes)
        assert isinstance(await leader.handle_request(put("t", 1, b"a", b"1")), PutReply)
        reply = await leader.handle_request(Call("t", 0, 1, Range(b"a")))
        assert isinstance(reply, RangeReply) and reply.kvs[0].value == b"1"
        follower = next(n for n in nodes if n is not leader)
        with pytest.raises(NotLeader) as raised:
            await follower.handle_request(put("t", 2, b"a", b"2"))
        assert raised.value.leader_hint == leader.config.node.id

    await run_cluster(tmp_path, "runtime-basic", body)


async def test_what_was_acknowledged_survives_a_restart_of_every_node(tmp_path: Path) -> None:
    """Durability: the log and snapshots on disk bring every acknowledged write back (snapshots every 7 entries)."""
    async def write(nodes: list[Node]) -> None:
        leader = await leader_of(nodes)
        for seq in range(1, 31):
            assert isinstance(await leader.handle_request(put("t", seq, b"k%d" % seq, b"v%d" % seq)), PutReply)

    async def read(nodes: list[Node]) -> None:
        leader = await leader_of(nodes)
        reply = await leader.handle_request(Call("u", 0, 0, Range(b"k", prefix=True)))
        assert sorted(kv.value for kv in reply.kvs) == sorted(b"v%d" % seq for seq in range(1, 31))
        status = await leader.handle_request(CoreStatus())
        assert status.applied_index >= 30

    await run_cluster(tmp_path, "runtime-restart-1", write, snapshot_every=7)
    assert any((tmp_path / n / "snapshots").glob("*.snap") for n in IDS)
    await run_cluster(tmp_path, "runtime-restart-2", read, snapshot_every=7)


async def test_a_core_status_request_reports_the_logs_size_on_disk(tmp_path: Path) -> None:
    async def body(nodes: list[Node]) -> None:
        leader = await leader_of(nodes)
        await leader.handle_request(put("t", 1, b"a", b"1"))
        status = await leader.handle_request(CoreStatus())
        assert status.role == "leader" and status.log_bytes > 0

    await run_cluster(tmp_path, "runtime-status", body)


async def test_a_batch_is_answered_call_by_call(tmp_path: Path) -> None:
    async def body(nodes: list[Node]) -> None:
        leader = await leader_of(nodes)
        reply = await leader.handle_request(Batch((put("t", 1, b"a", b"1"), put("t", 2, b"b", b"2"),
                                                   Call("t", 0, 0, Watch(b"a")))))
        first, second, watch = reply.replies
        assert isinstance(first, PutReply) and isinstance(second, PutReply) and second.revision == first.revision + 1
        assert isinstance(watch, ErrorReply) and "cannot travel in a batch" in watch.message

    await run_cluster(tmp_path, "runtime-batch", body)


async def test_a_node_whose_log_is_damaged_refuses_to_start_naming_file_and_offset(tmp_path: Path) -> None:
    async def write(nodes: list[Node]) -> None:
        leader = await leader_of(nodes)
        for seq in range(1, 6):
            await leader.handle_request(put("t", seq, b"k", b"v%d" % seq))

    await run_cluster(tmp_path, "runtime-damaged", write)
    segment = sorted((tmp_path / "a" / "wal").glob("segment-*.wal"))[0]
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a byte in the middle: not a torn tail, corruption
    segment.write_bytes(bytes(data))
    node = Node(make_config(tmp_path, "a", IDS, network="runtime-damaged-2"), plugins.load())
    with pytest.raises(StorageError, match=rf"{segment.name}: offset \d+"):
        await node.run()


class NoPeers:
    """The transport of a single-voter core: there is nobody to send to."""

    def send(self, dst: str, message: Any) -> bool:
        raise AssertionError(f"a single voter sent {type(message).__name__} to {dst}")


async def test_a_compaction_is_never_durable_before_the_snapshot_it_relies_on(tmp_path: Path) -> None:
    """Every sync of the log finds the snapshots its CompactTo needs already saved (else a crash then is fatal)."""
    raft = plugins.load().get(Kind.CONSENSUS, "raft", field="consensus")
    runtime = CoreRuntime(node_id="n1", plugin=raft, settings=EngineSettings(node_id="n1", voters=("n1",)),
                          data_dir=tmp_path, transport=NoPeers(), request_timeout=5.0, snapshot_every=5)  # type: ignore[arg-type]
    await runtime.open()
    assert runtime.wal is not None and runtime.snapshots is not None
    saved = [0]
    early: list[int] = []
    save, sync = runtime.snapshots.save, runtime.wal._sync

    def saving(meta: Any, data: bytes) -> None:
        save(meta, data)
        saved.append(meta.index)

    def syncing(data: bytearray, mark: Any) -> None:
        if mark.snapshot is not None and mark.snapshot.index > max(saved):
            early.append(mark.snapshot.index)
        sync(data, mark)

    runtime.snapshots.save, runtime.wal._sync = saving, syncing  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        with trio.fail_after(ELECTION_WAIT_S):
            while runtime.server is None or not runtime.server.leading:
                await trio.sleep(0.01)

        async def writer(w: int) -> None:
            for seq in range(1, 40):
                await runtime.handle(Call(f"w{w}", seq, seq - 1, Put(b"k%d" % w, b"v%d" % seq)))

        async with trio.open_nursery() as writers:
            for w in range(16):
                writers.start_soon(writer, w)
        nursery.cancel_scope.cancel()
    assert len(saved) > 10 and early == []

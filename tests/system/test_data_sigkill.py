"""The data cluster on real processes: a data node SIGKILLed under load loses nothing, and is repaired.

`keel up` with 3 core and 3 data nodes on 127.0.0.1 (the default bucket:
lww, n=3, r=2, w=2), once per consensus engine (the data cluster must not
care which). Writers put keys through one client, overwriting each of a
small set of keys with growing values, while the test SIGKILLs a data
node and later starts it again. Every put must succeed (W=2 of the two
replicas left), and afterwards (b, c) every key reads back as the last value
acknowledged for it, and (a) once read with r=3 (read repair) every data
node's record file holds the same records.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import trio

import keel
from keel import plugins
from keel.contract import Kind
from keel.data.records import RecordFile
from keel.errors import KeelError, StorageError, Unavailable

from tests.client.cluster import RunningCluster
from tests.system.test_core_sigkill import restart

ENGINES = plugins.load().names(Kind.CONSENSUS)
WRITERS = 16
KEYS_PER_WRITER = 20
BEFORE_S, DOWN_S, AFTER_S = 2.0, 2.0, 2.0
READY_S = 30.0  # seconds for the first map and bucket to reach the client
REPAIR_SETTLE_S = 3.0  # seconds for unacknowledged read repairs to commit before the cluster is killed


async def _first_put(bucket: keel.client.data.Bucket) -> None:
    with trio.fail_after(READY_S):
        while True:
            try:
                await bucket.put(b"hello", b"world")
                return
            except Unavailable:  # no map yet: the controller waits for membership to settle
                await trio.sleep(0.2)


def _wait_following(cluster: RunningCluster, node: str) -> None:
    """Until `node` reports a partition map and the default bucket (a restarted node reads them from the core)."""
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        row = next((r for r in cluster.status() if r["id"] == node), None)
        data = (row or {}).get("data") or {}
        if data.get("epoch") and "default" in data.get("buckets", ()):
            return
        time.sleep(0.2)
    pytest.fail(f"data node {node} did not follow the core's map and buckets within {READY_S} s")


def _records(cluster: RunningCluster, node: str) -> dict[tuple[str, int, bytes], bytes]:
    path = cluster.dir / "nodes" / node / "data" / "records.sqlite"
    deadline = time.monotonic() + 10.0
    while True:  # the killed process's lock goes with its last file descriptor
        try:
            file = RecordFile.open(path, node)
            break
        except StorageError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    with file:
        held = {}
        for row in file.partition_counts():
            after = None
            while True:
                page = file.digests(row.bucket, row.partition, after)
                held.update({(row.bucket, row.partition, key): digest for key, digest in page.items})
                if page.resume is None:
                    break
                after = page.resume
        return held


@pytest.mark.parametrize("consensus", ENGINES)
async def test_writes_go_on_through_a_data_node_sigkill_and_its_restart_repairs_it(tmp_path: Path,
                                                                                    consensus: str) -> None:
    cluster = RunningCluster(tmp_path / "cluster", consensus=consensus, data=3)
    errors: list[str] = []
    last: dict[bytes, bytes] = {}  # key -> the last value acknowledged for it
    try:
        await trio.to_thread.run_sync(cluster.wait_for_leader)
        async with keel.connect(cluster.endpoints()) as client:
            bucket = client.bucket()
            await _first_put(bucket)
            done = trio.Event()

            async def writer(task: int) -> None:
                n = 0
                while not done.is_set():
                    key = f"w{task:02d}/{n % KEYS_PER_WRITER:02d}".encode()
                    value = f"{n:08d}".encode()
                    n += 1
                    try:
                        await bucket.put(key, value)
                    except KeelError as exc:
                        errors.append(f"{key.decode()}: {type(exc).__name__}: {exc}")
                        return
                    last[key] = value  # one writer per key, in order: the last acknowledged is the latest

            async def nemesis() -> None:
                await trio.sleep(BEFORE_S)
                victim = next(n for n in cluster.nodes() if n["id"] == "d2")
                os.kill(victim["pid"], signal.SIGKILL)
                await trio.sleep(DOWN_S)
                restart(cluster, "d2")
                await trio.sleep(AFTER_S)
                done.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(nemesis)
                for task in range(WRITERS):
                    nursery.start_soon(writer, task)
            assert not errors, f"{len(errors)} puts failed with one data node down; the first: {errors[0]}"
            assert len(last) == WRITERS * KEYS_PER_WRITER
            await trio.to_thread.run_sync(_wait_following, cluster, "d2")
            for key, value in sorted(last.items()):
                assert await bucket.get(key, r=3) == value, key  # and repairs any replica behind
            # A read repair is sent without an acknowledgement: let the last ones commit before the
            # SIGKILL that ends the cluster, or the files compared below may miss one still in flight.
            await trio.sleep(REPAIR_SETTLE_S)
    finally:
        cluster.stop()
    held = {node: _records(cluster, node) for node in ("d1", "d2", "d3")}
    assert len(held["d1"]) == len(last) + 1  # every key, and the first put's
    assert held["d1"] == held["d2"] == held["d3"]

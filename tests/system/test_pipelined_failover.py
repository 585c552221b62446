"""One client, many writes in flight, the leader SIGKILLed again and again: every call succeeds, once.

Real processes on 127.0.0.1 (`keel up --data 0`), once per installed
consensus engine. One `keel.connect` client is shared by `TASKS` tasks,
each putting keys no other put uses, while the test kills the core leader
with SIGKILL and starts it again, `KILLS` times. A client's session must
outlive all of it (issue 16): no call may fail (a retried request held back
across a failover once came back as "answered and acknowledged before",
and a new leader once expired every session), every acknowledged put must
be there afterwards, and none may have been applied twice (each key's
version is 1). The same holds for a blocking `keel.Client` shared by
`THREADS` threads, whose calls all travel through its one background loop
and one session.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import trio

import keel
from keel import plugins
from keel.contract import Kind
from keel.errors import KeelError

from tests.client.cluster import RunningCluster
from tests.system.test_core_sigkill import restart

ENGINES = plugins.load().names(Kind.CONSENSUS)
TASKS = 64
KILLS = 3
BETWEEN_KILLS_S = 2.0  # seconds of load before each kill
DOWN_S = 0.5  # seconds a killed leader stays down
AFTER_S = 2.0  # seconds of load after the last restart
VALUE = b"v" * 256
CHECKERS = 32  # tasks reading the keys back
THREADS = 8


@pytest.mark.parametrize("consensus", ENGINES)
async def test_a_client_with_64_writes_in_flight_loses_none_and_repeats_none_across_leader_kills(
        tmp_path: Path, consensus: str) -> None:
    cluster = RunningCluster(tmp_path / "cluster", consensus=consensus)
    acked: list[bytes] = []
    errors: list[str] = []
    kills: list[str] = []
    try:
        await trio.to_thread.run_sync(cluster.wait_for_leader)
        async with keel.connect(cluster.endpoints()) as client:
            done = trio.Event()

            async def writer(task: int) -> None:
                n = 0
                while not done.is_set():
                    key = f"p/{task:03d}/{n:06d}".encode()
                    n += 1
                    try:
                        await client.put(key, VALUE)
                    except KeelError as exc:
                        errors.append(f"{key.decode()}: {type(exc).__name__}: {exc}")
                        return
                    acked.append(key)

            pids = {node["id"]: node["pid"] for node in cluster.nodes()}  # a restarted node's pid is not in the file

            async def nemesis() -> None:
                for _ in range(KILLS):
                    await trio.sleep(BETWEEN_KILLS_S)
                    leader = (await trio.to_thread.run_sync(cluster.wait_for_leader))["id"]
                    os.kill(pids[leader], signal.SIGKILL)
                    kills.append(f"{leader} at {len(acked)} acked")
                    await trio.sleep(DOWN_S)
                    pids[leader] = restart(cluster, leader).pid
                await trio.sleep(AFTER_S)
                done.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(nemesis)
                for task in range(TASKS):
                    nursery.start_soon(writer, task)

            assert not errors, f"{len(errors)} calls failed (kills: {kills}); the first: {errors[0]}"
            assert len(kills) == KILLS
            versions: dict[bytes, int | None] = {}
            pending = iter(acked)

            async def checker() -> None:
                for key in pending:
                    kv = await client.get(key)
                    versions[key] = None if kv is None else kv.version

            async with trio.open_nursery() as nursery:
                for _ in range(CHECKERS):
                    nursery.start_soon(checker)
            missing = [key for key, version in versions.items() if version is None]
            twice = [key for key, version in versions.items() if version not in (None, 1)]
            assert not missing, f"{len(missing)} of {len(acked)} acknowledged puts are gone, e.g. {missing[:3]}"
            assert not twice, f"{len(twice)} puts were applied more than once, e.g. {twice[:3]}"
            stored = (await client.range(b"p/", keys_only=True, limit=1)).count
            assert stored == len(acked), f"{stored} keys stored, {len(acked)} puts acknowledged"
    finally:
        cluster.stop()


@pytest.mark.parametrize("consensus", ENGINES)
def test_a_blocking_client_shared_by_8_threads_loses_none_and_repeats_none_across_leader_kills(
        tmp_path: Path, consensus: str) -> None:
    cluster = RunningCluster(tmp_path / "cluster", consensus=consensus)
    acked: list[bytes] = []
    errors: list[str] = []
    kills: list[str] = []
    try:
        cluster.wait_for_leader()
        with keel.Client(cluster.endpoints()) as client:
            done = threading.Event()

            def writer(thread: int) -> None:
                n = 0
                while not done.is_set():
                    key = f"b/{thread:02d}/{n:06d}".encode()
                    n += 1
                    try:
                        client.put(key, VALUE)
                    except KeelError as exc:
                        errors.append(f"{key.decode()}: {type(exc).__name__}: {exc}")
                        return
                    acked.append(key)

            threads = [threading.Thread(target=writer, args=(t,), name=f"writer-{t}") for t in range(THREADS)]
            for thread in threads:
                thread.start()
            pids = {node["id"]: node["pid"] for node in cluster.nodes()}
            try:
                for _ in range(KILLS):
                    time.sleep(BETWEEN_KILLS_S)
                    leader = cluster.wait_for_leader()["id"]
                    os.kill(pids[leader], signal.SIGKILL)
                    kills.append(f"{leader} at {len(acked)} acked")
                    time.sleep(DOWN_S)
                    pids[leader] = restart(cluster, leader).pid
                time.sleep(AFTER_S)
            finally:
                done.set()
                for thread in threads:
                    thread.join(timeout=60)
            assert not any(thread.is_alive() for thread in threads), "a writer thread is stuck in a call"
            assert not errors, f"{len(errors)} calls failed (kills: {kills}); the first: {errors[0]}"
            reply = client.range(b"b/", keys_only=True)
            assert not reply.more, "the check needs every key in one reply"
            versions = {kv.key: kv.version for kv in reply.kvs}
            missing = [key for key in acked if key not in versions]
            twice = [key for key, version in versions.items() if version != 1]
            assert not missing, f"{len(missing)} of {len(acked)} acknowledged puts are gone, e.g. {missing[:3]}"
            assert not twice, f"{len(twice)} puts were applied more than once, e.g. {twice[:3]}"
            assert len(versions) == len(acked), f"{len(versions)} keys stored, {len(acked)} puts acknowledged"
    finally:
        cluster.stop()

"""The core under SIGKILL, as real processes on 127.0.0.1: histories stay linearizable and nothing acknowledged is lost.

Six clients do reads, writes and cas on four keys for a few seconds, each
operation recorded Jepsen style (invoke, then ok, fail, or info when its
short deadline ran out), while the test kills the leader with SIGKILL and
starts it again, once per installed consensus engine. The history must
pass the linearizability checker; the kill must have struck operations in
flight, and a new leader must have served after it.
Then every node is killed and the cluster started again from its data
directories; a final read of every key, appended to the history, must
still be linearizable: no acknowledged write was lost.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

import keel
from keel import plugins
from keel.conformance.checkers import History, check_linearizable
from keel.contract import Kind
from keel.errors import KeelError

from tests.client.cluster import RunningCluster

ENGINES = plugins.load().names(Kind.CONSENSUS)
CLIENTS = 6
KEYS = [f"k{i}" for i in range(4)]
RUN_S = 6.0  # seconds of client operations
KILL_AT_S = 2.0  # seconds into the run the leader is killed
DOWN_S = 1.0  # seconds the killed leader stays down
CALL_DEADLINE_S = 0.2  # seconds an operation may take, retries included; below an election, so a kill leaves doubt
RESTART_WAIT_S = 30.0  # seconds a restarted node gets to start


class Recorder:
    """Client operations into a History, with wall-clock times."""

    def __init__(self) -> None:
        self.history = History()
        self.start = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.start

    async def run(self, process: int, f: str, key: str, value: object, call: object) -> tuple[str, object]:
        """Run one operation and record it; (completion, what a read saw)."""
        handle = self.history.invoke(process, f, key, value, time=self.now())
        try:
            with trio.fail_after(CALL_DEADLINE_S):
                result = await call  # type: ignore[misc]
        except (KeelError, trio.TooSlowError):
            self.history.info(handle, time=self.now())
            return "info", None
        if f == "read":
            read = None if result is None else int(result.value)
            self.history.ok(handle, read, time=self.now())
            return "ok", read
        if f == "cas" and not result:
            self.history.fail(handle, time=self.now())
            return "fail", None
        self.history.ok(handle, time=self.now())
        return "ok", None


async def client(process: int, endpoints: object, recorder: Recorder, until: float) -> None:
    rng = random.Random(process)
    seen: dict[str, int | None] = {}
    async with keel.connect(endpoints, request_timeout=CALL_DEADLINE_S / 3, deadline=CALL_DEADLINE_S) as c:
        n = 0
        while recorder.now() < until:
            n += 1
            key = rng.choice(KEYS)
            value = process * 100_000 + n
            f = rng.choice(["read", "read", "write", "cas"])
            if f == "read":
                completion, read = await recorder.run(process, f, key, None, c.get(key))
                if completion == "ok":
                    seen[key] = read  # type: ignore[assignment]
            elif f == "write":
                await recorder.run(process, f, key, value, c.put(key, str(value)))
            else:
                expected = seen.get(key)
                await recorder.run(process, f, key, [expected, value],
                                   c.cas(key, None if expected is None else str(expected), str(value)))


def restart(cluster: RunningCluster, node_id: str) -> subprocess.Popen[bytes]:
    config = next(n["config"] for n in cluster.nodes() if n["id"] == node_id)
    log = (cluster.dir.parent / f"{node_id}-restarted.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "keel", "node", "--config", config], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    cluster.adopt(proc.pid)
    return proc


@pytest.mark.parametrize("consensus", ENGINES)
async def test_a_history_with_the_leader_killed_is_linearizable_and_survives_a_restart_of_all(
        tmp_path: Path, consensus: str) -> None:
    directory = tmp_path / "cluster"
    cluster = RunningCluster(directory, consensus=consensus)
    try:
        leader = (await trio.to_thread.run_sync(cluster.wait_for_leader))["id"]
        endpoints = cluster.endpoints()
        recorder = Recorder()  # its clock starts now: a slow start must not eat the clients' time before the kill

        async def nemesis() -> None:
            await trio.sleep(KILL_AT_S)
            cluster.kill(leader)
            recorder.history.note("nemesis", "kill", leader, time=recorder.now())
            await trio.sleep(DOWN_S)
            restart(cluster, leader)
            recorder.history.note("nemesis", "restart", leader, time=recorder.now())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(nemesis)
            for process in range(CLIENTS):
                nursery.start_soon(client, process, endpoints, recorder, RUN_S)
        verdict = check_linearizable(recorder.history)
        assert verdict.linearizable is True, verdict.explain()
        # The kill must have struck operations in flight, and a new leader must have served afterwards;
        # whether any was left in doubt depends on how fast the election was, so that is not asked.
        killed_at = next(note.time for note in recorder.history.notes if note.f == "kill")
        ops = recorder.history.operations
        assert any(op.invoke_time < killed_at < op.complete_time for op in ops), \
            f"no operation was in flight when the leader was killed at t={killed_at:.3f}: {len(ops)} operations, " \
            f"invoked from t={min((op.invoke_time for op in ops), default=0):.3f}; the test did not exercise a failover"
        assert any(op.completion == "ok" and op.invoke_time > killed_at for op in ops), \
            f"nothing succeeded after the leader was killed at t={killed_at:.3f}: " \
            f"{sum(op.invoke_time > killed_at for op in ops)} operations asked after it, none answered ok"
        assert sum(op.completion == "ok" for op in ops) > 50
    finally:
        cluster.stop()

    again = RunningCluster(directory, consensus=consensus)
    try:
        await trio.to_thread.run_sync(again.wait_for_leader)
        async with keel.connect(again.endpoints()) as c:
            for key in KEYS:
                handle = recorder.history.invoke("final", "read", key, time=recorder.now())
                kv = await c.get(key)
                recorder.history.ok(handle, None if kv is None else int(kv.value), time=recorder.now())
        verdict = check_linearizable(recorder.history)
        assert verdict.linearizable is True, f"after a restart of every node: {verdict.explain()}"
    finally:
        again.stop()

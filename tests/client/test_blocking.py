"""The blocking client: the same calls without async, served by one background loop that keeps leases alive."""

from __future__ import annotations

import asyncio
import queue
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

import keel
from keel.client import Event, absent, put_op
from keel.conformance.checkers import History, assert_linearizable
from keel.errors import KeelError, LeaseExpired, Unavailable
from tests.client.cluster import RunningCluster

THREADS = 16
OPS_PER_THREAD = 20
THREADS_TIMEOUT_S = 300.0  # seconds for every thread's calls on a loaded machine; a hang fails, slowness does not
LOSS_TIMEOUT_S = 60.0  # seconds for the loop to notice a lease revoked elsewhere (its next keep-alive)
WATCH_TIMEOUT_S = 60.0  # seconds for a watch event to arrive
EXIT_TIMEOUT_S = 120.0  # seconds for a program to start, connect, call and exit


def test_blocking_calls_read_and_write_keys(cluster: RunningCluster) -> None:
    with keel.Client(cluster.addresses()) as c:
        c.put("blocking/a", "1")
        assert c.get("blocking/a").value == b"1"
        assert c.cas("blocking/a", "1", "2")
        assert not c.cas("blocking/a", "1", "3")
        assert c.txn(compare=[absent("blocking/b")], success=[put_op("blocking/b", "x")]).succeeded
        assert [kv.key for kv in c.range("blocking/").kvs] == [b"blocking/a", b"blocking/b"]
        assert c.delete("blocking/", prefix=True).deleted == 2
        assert c.get("blocking/a") is None


def test_one_session_spans_the_calls(cluster: RunningCluster) -> None:
    with keel.Client(cluster.endpoints()) as c:
        client_id = c.client_id
        for i in range(3):
            c.put("blocking/session", str(i))
        assert c.client_id == client_id
        assert c._handle.client.caller.session.acked == 3  # every call's seq came from the one counter, answered


def test_a_blocking_watch_yields_every_event_in_order(cluster: RunningCluster) -> None:
    with keel.Client(cluster.endpoints()) as c:
        start = c.put("blocking/w", "1").revision
        c.put("blocking/w", "2")
        c.delete("blocking/w")
        events = c.watch("blocking/w", start_revision=start)
        seen = [next(events) for _ in range(3)]
    assert [(e.kind, e.kv.value) for e in seen] == [("put", b"1"), ("put", b"2"), ("delete", b"")]


def test_a_lease_left_alone_past_its_ttl_still_holds_its_keys(cluster: RunningCluster) -> None:
    with keel.Client(cluster.endpoints()) as c:
        lease = c.grant_lease(2.0)
        c.put("blocking/leased", "v", lease=lease)
        time.sleep(6.0)  # three ttls without a call: the client's loop keeps the lease alive meanwhile
        assert not lease.lost
        assert c.get("blocking/leased").lease == lease.id
        c.revoke_lease(lease)
        assert c.get("blocking/leased") is None


def test_a_lock_held_through_an_idle_minute_is_still_held(cluster: RunningCluster) -> None:
    with keel.Client(cluster.endpoints()) as holder, keel.Client(cluster.endpoints()) as other:
        with holder.lock("blocking-idle-lock", ttl=2.0) as token:
            time.sleep(60.0)  # thirty ttls without a call
            with pytest.raises(Unavailable, match="not done within"):
                with other.lock("blocking-idle-lock", timeout=1.0):
                    pass
        with other.lock("blocking-idle-lock") as later:
            pass
    assert later > token


def test_blocking_locks_hand_out_growing_tokens_and_give_up_when_told(cluster: RunningCluster) -> None:
    with keel.Client(cluster.endpoints()) as a, keel.Client(cluster.endpoints()) as b:
        with a.lock("blocking-lock") as first:
            with pytest.raises(Unavailable, match="not done within"):
                with b.lock("blocking-lock", timeout=1.0):
                    pass
        with b.lock("blocking-lock") as second:
            pass
    assert second > first


def test_a_blocking_election_elects_and_resigns(cluster: RunningCluster) -> None:
    with keel.Client(cluster.endpoints()) as c:
        election = c.election("blocking-election")
        assert election.leader() is None
        election.campaign("me")
        assert election.leader().value == b"me"
        election.resign()
        assert election.leader() is None


class Recorder:
    """Operations of many threads into one `History`, in the order they are invoked."""

    def __init__(self) -> None:
        self.history = History()
        self._lock = threading.Lock()

    def run(self, process: int, f: str, key: str, value: object, call: Callable[[], Any]) -> Any:
        """Run `call` as operation `f` of `process` and record it; what it returned, None if it failed."""
        with self._lock:
            handle = self.history.invoke(process, f, key, value, time=time.monotonic())
        try:
            result = call()
        except KeelError:
            with self._lock:
                self.history.info(handle, time=time.monotonic())
            return None
        with self._lock:
            now = time.monotonic()
            if f == "read":
                self.history.ok(handle, None if result is None else int(result.value), time=now)
            elif f == "cas" and not result:
                self.history.fail(handle, time=now)
            else:
                self.history.ok(handle, time=now)
        return result


def test_threads_sharing_one_client_get_right_answers_and_a_linearizable_history(cluster: RunningCluster) -> None:
    prefix = f"shared-{uuid.uuid4().hex[:8]}/"
    keys = [f"{prefix}k{i}" for i in range(3)]
    counter = f"{prefix}counter"
    recorder = Recorder()
    tokens: list[int] = []
    errors: list[BaseException] = []

    def worker(c: keel.Client, process: int) -> None:
        rng = random.Random(process)
        seen: dict[str, int | None] = {}
        try:
            for n in range(1, OPS_PER_THREAD + 1):
                key = rng.choice(keys)
                value = process * 1000 + n
                f = rng.choice(["read", "write", "cas"])
                if f == "read":
                    kv = recorder.run(process, "read", key, None, lambda: c.get(key))
                    seen[key] = None if kv is None else int(kv.value)
                elif f == "write":
                    recorder.run(process, "write", key, value, lambda: c.put(key, str(value)))
                else:
                    expected = seen.get(key)
                    recorder.run(process, "cas", key, [expected, value],
                                 lambda: c.cas(key, None if expected is None else str(expected), str(value)))
                if n == OPS_PER_THREAD // 2:  # then everyone queues for the lock, once, mid-run
                    with c.lock(f"{prefix.rstrip('/')}-lock", ttl=5.0) as token:
                        tokens.append(token)
                        kv = recorder.run(process, "read", counter, None, lambda: c.get(counter))
                        count = 0 if kv is None else int(kv.value)
                        recorder.run(process, "write", counter, count + 1, lambda: c.put(counter, str(count + 1)))
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            errors.append(exc)

    with keel.Client(cluster.endpoints()) as c:
        threads = [threading.Thread(target=worker, args=(c, p), daemon=True) for p in range(1, THREADS + 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(THREADS_TIMEOUT_S)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
        final = c.get(counter)
    assert int(final.value) == THREADS  # each lock holder added one: nobody held it at the same time as another
    assert len(set(tokens)) == THREADS
    assert all(op.completion != "info" for op in recorder.history.operations)  # every call answered
    assert_linearizable(recorder.history)


def test_a_lease_lost_is_told_to_listeners_and_raised_once_by_the_next_call(cluster: RunningCluster) -> None:
    with keel.Client(cluster.endpoints()) as c, keel.Client(cluster.endpoints()) as other:
        told: queue.Queue[object] = queue.Queue()
        c.add_lease_listener(lambda lease: told.put((lease, threading.current_thread().name)))
        lease = c.grant_lease(3.0)
        c.put("lost/key", "v", lease=lease)
        other.revoke_lease(lease.id)  # the core ends it under the holder's feet
        lost, thread = told.get(timeout=LOSS_TIMEOUT_S)  # at the loop's next keep-alive
        assert lost is lease and lease.lost and thread.endswith("-callbacks")
        with pytest.raises(LeaseExpired, match=f"lease {lease.id}"):
            c.get("lost/key")
        assert c.get("lost/key") is None  # told once; this call went through
        ended = c.grant_lease(3.0)
        c.revoke_lease(ended)  # a lease the program ends itself is no news
        assert c.get("lost/key") is None
        assert told.empty()


def test_a_blocking_call_inside_an_event_loop_is_refused_naming_the_door_to_use(cluster: RunningCluster) -> None:
    with keel.Client(cluster.endpoints()) as c:
        async def in_trio() -> None:
            c.get("refused")

        async def in_asyncio() -> None:
            c.get("refused")

        with pytest.raises(RuntimeError, match=r"inside a running Trio loop.*keel\.connect"):
            trio.run(in_trio)
        with pytest.raises(RuntimeError, match=r"inside a running asyncio loop.*keel\.aio\.connect"):
            asyncio.run(in_asyncio())
        assert c.get("refused") is None  # outside any loop it serves as before


def test_watch_callbacks_get_every_event_in_order_on_the_clients_thread(cluster: RunningCluster) -> None:
    with keel.Client(cluster.endpoints()) as c:
        got: queue.Queue[object] = queue.Queue()

        def callback(event: object) -> None:
            assert isinstance(event, Event)
            now = c.get(event.kv.key)  # a callback may call the client: it does not run on the loop's thread
            got.put((event.kv.value, now.value, threading.current_thread().name))

        watch = c.add_watch_callback("callback/", callback, prefix=True)
        for i in range(5):
            c.put(f"callback/{i}", str(i))
        seen = [got.get(timeout=WATCH_TIMEOUT_S) for _ in range(5)]
        watch.cancel()
        c.put("callback/after", "x")
        c.put("callback/0", "again")
    assert [(value, now) for value, now, _ in seen] == [(str(i).encode(),) * 2 for i in range(5)]
    assert {name for _, _, name in seen} == {f"{c._handle.portal.name}-callbacks"}
    assert got.empty()  # cancelled: nothing after


EXIT_SCRIPT = """
import sys, threading
import keel

c = keel.Client(sys.argv[1].split(","))
lease = c.grant_lease(300.0)
c.put("exit/leased", "v", lease=lease)
c.add_watch_callback("exit/", lambda event: None, prefix=True)
waiting = threading.Thread(target=lambda: next(iter(c.watch("exit/nothing"))), daemon=True)
waiting.start()  # a call in flight at exit
print("ready", flush=True)
"""


def test_a_program_that_exits_without_close_exits_and_revokes_its_lease(cluster: RunningCluster) -> None:
    done = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, ",".join(cluster.addresses())], capture_output=True,
                          text=True, timeout=EXIT_TIMEOUT_S, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert "ready" in done.stdout
    with keel.Client(cluster.endpoints()) as c:
        assert c.get("exit/leased") is None  # revoked on the way out: its ttl of 300 s did not run out


@pytest.fixture
def doomed(tmp_path: Path) -> Iterator[RunningCluster]:
    """A cluster of this test's own: it loses its leader."""
    running = RunningCluster(tmp_path / "doomed")
    try:
        running.wait_for_leader()
        yield running
    finally:
        running.stop()


def test_a_watch_callback_carries_on_when_the_leader_is_killed(doomed: RunningCluster) -> None:
    leader = doomed.wait_for_leader()
    count, killed_at = 20, 8
    expected = [(f"cb-kill/{i:03d}".encode(), str(i).encode()) for i in range(count)]
    got: queue.Queue[object] = queue.Queue()
    with keel.Client(doomed.endpoints()) as watching:
        watching.add_watch_callback("cb-kill/", got.put, prefix=True)
        with keel.Client(doomed.endpoints()) as before:
            for key, value in expected[:killed_at]:
                before.put(key, value)
        doomed.kill(leader["id"])
        with keel.Client(doomed.endpoints()) as after:  # a new session, as in the async watch's test
            for key, value in expected[killed_at:]:
                after.put(key, value)
        events = [got.get(timeout=WATCH_TIMEOUT_S) for _ in range(count)]
    assert [(e.kv.key, e.kv.value) for e in events] == expected  # once each, in order, across the failover

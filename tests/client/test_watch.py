"""Watches see every event once, in order, also across the leader's death."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

import keel
from keel.core.api import Event
from tests.client.cluster import RunningCluster

WATCH_TIMEOUT_S = 60.0  # seconds for a watch to see what was written, on a loaded machine


async def _collect(watcher: object, count: int, into: list[Event]) -> None:
    async for event in watcher:  # type: ignore[attr-defined]
        into.append(event)
        if len(into) == count:
            return


def _seen(events: list[Event]) -> list[tuple[str, bytes, bytes]]:
    return [(e.kind, e.kv.key, e.kv.value) for e in events]


async def test_a_watch_sees_every_change_once_in_order(cluster: RunningCluster) -> None:
    events: list[Event] = []
    async with keel.connect(cluster.endpoints()) as c:
        watcher = c.watch("w1/", prefix=True)
        await c.put("w1/before", "0")  # before the watch starts: not seen
        await watcher.start()
        await c.put("outside", "x")  # not under the prefix
        with trio.fail_after(WATCH_TIMEOUT_S):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_collect, watcher, 5, events)
                await c.put("w1/a", "1")
                await c.put("w1/b", "2")
                await c.delete("w1/a")
                await c.put("w1/b", "3")
                await c.put("w1/c", "4")
    assert _seen(events) == [("put", b"w1/a", b"1"), ("put", b"w1/b", b"2"), ("delete", b"w1/a", b""),
                             ("put", b"w1/b", b"3"), ("put", b"w1/c", b"4")]
    revisions = [e.kv.mod_revision for e in events]
    assert revisions == sorted(set(revisions))


async def test_a_watch_from_a_revision_replays_what_changed_since(cluster: RunningCluster) -> None:
    async with keel.connect(cluster.endpoints()) as c:
        start = await c.put("w2/k", "1")
        await c.put("w2/k", "2")
        events: list[Event] = []
        with trio.fail_after(WATCH_TIMEOUT_S):
            await _collect(c.watch("w2/k", start_revision=start.revision), 2, events)
    assert [e.kv.value for e in events] == [b"1", b"2"]


@pytest.fixture
def doomed(tmp_path: Path) -> Iterator[RunningCluster]:
    """A cluster of this test's own: it loses its leader."""
    running = RunningCluster(tmp_path / "doomed")
    try:
        running.wait_for_leader()
        yield running
    finally:
        running.stop()


async def test_a_watch_carries_on_when_the_leader_is_killed(doomed: RunningCluster) -> None:
    leader = doomed.wait_for_leader()
    events: list[Event] = []
    count, killed_at = 30, 10
    expected = [(f"w3/{i:03d}".encode(), str(i).encode()) for i in range(count)]
    async with keel.connect(doomed.endpoints()) as watching:
        watcher = watching.watch("w3/", prefix=True)
        await watcher.start()
        with trio.fail_after(WATCH_TIMEOUT_S):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_collect, watcher, count, events)
                async with keel.connect(doomed.endpoints()) as before:
                    for key, value in expected[:killed_at]:
                        await before.put(key, value)
                doomed.kill(leader["id"])
                # A new session writes the rest: an old one would meet the core's log-time jump at the new
                # leader (see the report: Command.at is each node's own trio clock) and expire.
                async with keel.connect(doomed.endpoints()) as after:
                    for key, value in expected[killed_at:]:
                        await after.put(key, value)
                    status = await after.node_status()
    assert [(e.kv.key, e.kv.value) for e in events] == expected  # once each, in order, across the failover
    assert all(e.kind == "put" and e.kv.version == 1 for e in events)
    assert leader["id"] not in {s.node_id for s in status}
    assert {s.leader for s in status} - {None} <= {s.node_id for s in status}

"""Locks against a real core: one holder at a time, and every new holder's fencing token is larger."""

from __future__ import annotations

import trio

import keel
from tests.client.cluster import RunningCluster

LOCK_TIMEOUT_S = 60.0  # seconds for the whole hand-over, on a loaded machine


async def test_a_second_holder_waits_and_gets_a_larger_fencing_token(cluster: RunningCluster) -> None:
    tokens: list[tuple[str, int]] = []
    first_holds = trio.Event()
    release_first = trio.Event()

    async def first(c: keel.client.AsyncClient) -> None:
        async with c.lock("jobs", ttl=5.0) as token:
            tokens.append(("first", token))
            first_holds.set()
            await release_first.wait()
            tokens.append(("first releases", token))

    async def second(c: keel.client.AsyncClient) -> None:
        await first_holds.wait()
        async with c.lock("jobs", ttl=5.0) as token:
            tokens.append(("second", token))

    async with keel.connect(cluster.endpoints()) as a, keel.connect(cluster.endpoints()) as b:
        with trio.fail_after(LOCK_TIMEOUT_S):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(first, a)
                nursery.start_soon(second, b)
                await first_holds.wait()
                await trio.sleep(1.0)  # the second is queued by now; it must not get in while the first holds
                release_first.set()
    assert [what for what, _ in tokens] == ["first", "first releases", "second"]
    assert tokens[2][1] > tokens[0][1]


async def test_a_lock_is_free_again_after_its_holder_leaves(cluster: RunningCluster) -> None:
    async with keel.connect(cluster.endpoints()) as c:
        with trio.fail_after(LOCK_TIMEOUT_S):
            async with c.lock("again") as one:
                pass
            async with c.lock("again") as two:
                pass
    assert two > one

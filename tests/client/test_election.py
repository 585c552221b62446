"""Elections against a real core: the first candidate leads, observers see each change, resigning hands over."""

from __future__ import annotations

import trio

import keel
from keel.core.api import KeyValue
from tests.client.cluster import RunningCluster

ELECTION_TIMEOUT_S = 60.0  # seconds for the whole scenario, on a loaded machine


async def test_candidates_lead_in_turn_and_an_observer_sees_each_leader(cluster: RunningCluster) -> None:
    seen: list[bytes | None] = []

    async def observe(c: keel.client.AsyncClient, until: int) -> None:
        async for leader in c.election("svc").observe():
            seen.append(None if leader is None else leader.value)
            if len(seen) == until:
                return

    async with (keel.connect(cluster.endpoints()) as a, keel.connect(cluster.endpoints()) as b,
                keel.connect(cluster.endpoints()) as watcher):
        with trio.fail_after(ELECTION_TIMEOUT_S):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(observe, watcher, 3)
                while not seen:
                    await trio.sleep(0.05)  # the observer has seen "nobody" first
                alpha, beta = a.election("svc"), b.election("svc")
                await alpha.campaign("alpha", ttl=5.0)
                leader: KeyValue | None = await beta.leader()
                assert leader is not None and leader.value == b"alpha"
                elected = trio.Event()

                async def stand() -> None:
                    await beta.campaign("beta", ttl=5.0)
                    elected.set()

                nursery.start_soon(stand)
                await trio.sleep(1.0)
                assert not elected.is_set()  # alpha still leads
                await alpha.resign()
                await elected.wait()
        assert (await a.election("svc").leader()).value == b"beta"
        await beta.resign()
        assert await a.election("svc").leader() is None
    assert seen == [None, b"alpha", b"beta"]

"""Leases against a real core: kept alive while held, gone with their keys when not, loss made loud."""

from __future__ import annotations

import pytest
import trio

import keel
from keel.errors import LeaseExpired
from tests.client.cluster import RunningCluster

EXPIRY_TIMEOUT_S = 60.0  # seconds for a 1 s lease to be expired by the leader, on a loaded machine


async def test_a_lease_without_keepalives_expires_and_its_keys_vanish(cluster: RunningCluster) -> None:
    async with keel.connect(cluster.endpoints()) as c:
        lease = await c.grant_lease(1.0, keep_alive=False)
        await c.put("lease1/k", "v", lease=lease)
        assert (await c.get("lease1/k")).lease == lease.id
        with trio.fail_after(EXPIRY_TIMEOUT_S):
            while await c.get("lease1/k") is not None:
                await trio.sleep(0.2)
        with pytest.raises(LeaseExpired):
            await c.keepalive(lease)
        with pytest.raises(LeaseExpired):
            await c.put("lease1/other", "v", lease=lease)


async def test_a_held_lease_outlives_its_ttl_and_its_end_deletes_its_keys(cluster: RunningCluster) -> None:
    async with keel.connect(cluster.endpoints()) as c:
        async with c.lease(3.0) as lease:
            await c.put("lease2/k", "v", lease=lease)
            await trio.sleep(4.5)  # past the ttl: only the keep-alives hold it
            assert (await c.get("lease2/k")).lease == lease.id
            assert not lease.lost.is_set()
        assert await c.get("lease2/k") is None  # revoked on the way out


async def test_a_lease_revoked_elsewhere_cancels_the_body_and_raises(cluster: RunningCluster) -> None:
    async with keel.connect(cluster.endpoints()) as c, keel.connect(cluster.endpoints()) as other:
        with trio.fail_after(EXPIRY_TIMEOUT_S), pytest.raises(LeaseExpired):
            async with c.lease(3.0) as lease:
                await other.revoke_lease(lease.id)
                await trio.sleep_forever()  # cancelled by the next keep-alive's LeaseExpired
        assert lease.lost.is_set()
        assert isinstance(lease.error, LeaseExpired)

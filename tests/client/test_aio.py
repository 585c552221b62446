"""The asyncio door: the same calls as awaitables, while the asyncio program's other tasks keep running."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import keel
import keel.aio
from keel.errors import LeaseExpired, Unavailable
from tests.client.cluster import RunningCluster

PROGRAM_TIMEOUT_S = 120.0  # seconds an asyncio program may take; past it the test fails rather than hangs
TICKS_WHILE_WAITING = 5  # ticks of the other task seen while a lock wait is pending


def run_program(main: Callable[[], Awaitable[Any]]) -> Any:
    """`asyncio.run(main())` on a thread of its own, failing the test if it does not end in time.

    A door that blocked the asyncio loop would hang it for good; this turns that into a failure.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(PROGRAM_TIMEOUT_S)
    if thread.is_alive():
        pytest.fail(f"the asyncio program did not end within {PROGRAM_TIMEOUT_S:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def test_an_asyncio_program_keeps_its_other_tasks_running_while_a_call_waits(cluster: RunningCluster) -> None:
    endpoints = cluster.endpoints()

    async def main() -> tuple[int, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        other_task = asyncio.create_task(ticker())
        async with keel.aio.connect(endpoints) as a, keel.aio.connect(endpoints) as b:
            await a.put("aio/k", "1")
            assert (await a.get("aio/k")).value == b"1"
            assert await a.cas("aio/k", "1", "2")
            async with a.lock("aio-lock") as first:

                async def take() -> int:
                    async with b.lock("aio-lock") as token:
                        return token

                waiter = asyncio.create_task(take())
                before = ticks
                # The other task ticks on while `take` waits in the queue behind `a`; were the
                # asyncio loop blocked by the wait, this would never end (and `run_program` fails).
                while ticks < before + TICKS_WHILE_WAITING:
                    await asyncio.sleep(0.01)
                    assert not waiter.done()
            second = await waiter
        other_task.cancel()
        return first, second

    first, second = run_program(main)
    assert second > first


def test_asyncio_leases_watches_and_cancellation(cluster: RunningCluster) -> None:
    endpoints = cluster.endpoints()

    async def main() -> None:
        async with keel.aio.connect(endpoints) as c, keel.aio.connect(endpoints) as other:
            watch = c.watch("aio-w/", prefix=True)
            await watch.start()
            async with c.lease(2.0) as lease:
                await c.put("aio-w/leased", "v", lease=lease)
                await asyncio.sleep(4.0)  # two ttls without a call: the client's loop keeps it alive
                assert (await c.get("aio-w/leased")).lease == lease.id
            events = [await anext(watch), await anext(watch)]
            assert [e.kind for e in events] == ["put", "delete"]  # the revoke at the block's end deleted it

            async with c.lock("aio-cancel"):
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.5):  # cancels the queued wait in the loop, revoking its lease
                        async with other.lock("aio-cancel"):
                            pass
            async with other.lock("aio-cancel", timeout=30.0):
                pass

            lost: asyncio.Queue[object] = asyncio.Queue()
            c.add_lease_listener(lost.put_nowait)
            doomed = await c.grant_lease(3.0)
            await other.revoke_lease(doomed.id)
            assert await asyncio.wait_for(lost.get(), 60.0) is doomed
            with pytest.raises(LeaseExpired):
                await c.get("aio-w/leased")
            assert await c.get("aio-w/leased") is None

    run_program(main)


def test_asyncio_calls_are_bounded_by_their_deadline() -> None:
    async def main() -> None:
        async with keel.aio.connect(["127.0.0.1:1"], deadline=0.5, request_timeout=0.2) as c:
            with pytest.raises(Unavailable):
                await c.get("nowhere")

    run_program(main)

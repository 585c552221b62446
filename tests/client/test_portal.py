"""The portal: a Trio loop on a thread of its own, serving calls from other threads (no cluster needed)."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
import trio

from keel.client.portal import Portal
from keel.errors import KeelError, Unavailable

WAIT_S = 30.0  # seconds a test waits for something that happens at once unless the portal is broken
THREADS = 8


class Resource:
    """What the loop holds: a meeting point for calls, and a record of what happened in the loop."""

    def __init__(self) -> None:
        self.arrived = 0
        self.all_here: trio.Event | None = None
        self.cleaned_up: list[str] = []
        self.closed = False


@asynccontextmanager
async def resource() -> AsyncIterator[Resource]:
    held = Resource()
    held.all_here = trio.Event()
    try:
        yield held
    finally:
        held.closed = True


Opened = tuple[Portal, Resource]


@pytest.fixture
def portal() -> Iterator[Opened]:
    opened = Portal.open(resource, name="test-portal")
    yield opened
    opened[0].close()


def test_a_call_returns_its_value_or_raises_its_own_error_in_the_waiting_thread(portal: Opened) -> None:
    loop, _ = portal

    async def double(_r: Resource) -> int:
        await trio.sleep(0)
        return 21 * 2

    async def fail(_r: Resource) -> int:
        await trio.sleep(0)
        raise Unavailable("nobody answered")

    assert loop.submit(double).result() == 42
    with pytest.raises(Unavailable, match="nobody answered"):
        loop.submit(fail).result()
    assert loop.thread is not threading.current_thread()


def test_calls_from_many_threads_run_side_by_side_in_the_one_loop(portal: Opened) -> None:
    loop, _ = portal

    async def meet(r: Resource) -> str:
        r.arrived += 1
        assert r.all_here is not None
        if r.arrived == THREADS:
            r.all_here.set()
        with trio.fail_after(WAIT_S):  # each call waits for all the others: they must run at once
            await r.all_here.wait()
        return threading.current_thread().name

    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        names = list(pool.map(lambda _: loop.submit(meet).result(), range(THREADS)))
    assert names == ["test-portal"] * THREADS


def test_a_cancelled_call_ends_in_the_loop_and_runs_its_cleanup(portal: Opened) -> None:
    loop, held = portal
    started = threading.Event()

    async def wait_forever(r: Resource) -> None:
        try:
            started.set()
            await trio.sleep_forever()
        finally:
            r.cleaned_up.append("wait_forever")

    call = loop.submit(wait_forever)
    assert started.wait(WAIT_S)
    call.cancel()
    with pytest.raises(concurrent.futures.CancelledError):
        call.future.result(timeout=WAIT_S)
    assert held.cleaned_up == ["wait_forever"]


def test_closing_fails_the_calls_still_running_and_refuses_new_ones() -> None:
    loop, held = Portal.open(resource, name="closing-portal")
    started = threading.Event()

    async def wait_forever(_r: Resource) -> None:
        started.set()
        await trio.sleep_forever()

    running = loop.submit(wait_forever)
    assert started.wait(WAIT_S)
    loop.close()
    with pytest.raises(KeelError, match="closed while the call ran"):
        running.future.result(timeout=WAIT_S)
    assert held.closed and loop.finished.done() and not loop.thread.is_alive()
    with pytest.raises(KeelError, match="closed"):
        loop.submit(wait_forever).result()
    loop.close()  # again: nothing happens


def test_a_resource_that_fails_to_open_fails_the_opening() -> None:
    @asynccontextmanager
    async def broken() -> AsyncIterator[None]:
        raise KeelError("cannot open")
        yield

    with pytest.raises(KeelError, match="cannot open"):
        Portal.open(broken, name="broken-portal")

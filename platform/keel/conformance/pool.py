"""Conformance seeds on every core: worker processes fed one seed at a time.

Each worker is `python -m keel.conformance.worker`, started and owned by a
task of `run_pool`'s nursery. A task takes the next (consensus, seed) job,
writes it to its worker and waits for the one JSON line that answers it.
Jobs go out one at a time, so a fast worker takes more of them and the
cores stay busy until the end.

A seed that does not finish within `seed_timeout` is a hang (a livelock,
a message storm): its worker is killed, the seed is reported as a
violation saying so, and a fresh worker takes the next job. A worker that
dies is reported the same way. Every worker is killed, by PID, when the
pool ends, also on Ctrl-C.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator

import trio

from keel.conformance.runner import SeedResult

__all__ = ["SEED_TIMEOUT_S", "Job", "run_pool"]

SEED_TIMEOUT_S = 300.0  # seconds; a seed takes about one, so a seed still running after this is stuck
KILL_WAIT_S = 5.0  # seconds to reap a killed worker
MAX_LINE = 1 * 2**20  # bytes; a result line is a few hundred, so a longer one is a broken worker

Job = tuple[str, int]  # (consensus engine name, seed)


async def run_pool(jobs: Iterable[Job], *, workers: int, on_result: Callable[[str, SeedResult], None],
                   seed_timeout: float = SEED_TIMEOUT_S) -> None:
    """Run every job on `workers` worker processes; `on_result(name, result)` as each ends."""
    queue = iter(jobs)
    async with trio.open_nursery() as nursery:
        for _ in range(max(1, workers)):
            nursery.start_soon(_serve, queue, on_result, seed_timeout)


async def _serve(queue: Iterator[Job], on_result: Callable[[str, SeedResult], None], seed_timeout: float) -> None:
    worker: _Worker | None = None
    try:
        for name, seed in queue:
            if worker is None:
                worker = await _Worker.start()
            started = time.perf_counter()
            try:
                with trio.fail_after(seed_timeout):
                    result = await worker.run(name, seed)
            except (trio.TooSlowError, _WorkerDied) as exc:
                why = (f"hung: still running after {seed_timeout:g} s (a livelock or a message storm)"
                       if isinstance(exc, trio.TooSlowError) else f"the worker running it died: {exc}")
                result = SeedResult(seed=seed, operations=0, violation=why, elapsed=time.perf_counter() - started)
                await worker.kill()
                worker = None
            on_result(name, result)
    finally:
        if worker is not None:
            await worker.kill()


class _WorkerDied(Exception):
    """A worker ended, or wrote something that is not a result, before answering."""


class _Worker:
    """One worker process and the bytes it has written but we have not read."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.buffer = bytearray()

    @classmethod
    async def start(cls) -> _Worker:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "keel.conformance.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        return cls(process)

    async def run(self, name: str, seed: int) -> SeedResult:
        assert self.process.stdin is not None
        try:
            await self.process.stdin.send_all((json.dumps({"consensus": name, "seed": seed}) + "\n").encode())
        except trio.BrokenResourceError:
            raise _WorkerDied(f"exit status {await self._status()}") from None
        line = await self._line()
        try:
            return SeedResult.from_json(json.loads(line))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            raise _WorkerDied(f"it wrote {line[:200]!r}: {exc}") from None

    async def _line(self) -> bytes:
        assert self.process.stdout is not None
        while b"\n" not in self.buffer:
            if len(self.buffer) > MAX_LINE:
                raise _WorkerDied(f"a line longer than {MAX_LINE} bytes")
            chunk = await self.process.stdout.receive_some()
            if not chunk:
                raise _WorkerDied(f"exit status {await self._status()}")
            self.buffer += chunk
        line, _, rest = self.buffer.partition(b"\n")
        self.buffer = bytearray(rest)
        return bytes(line)

    async def _status(self) -> int | None:
        with trio.move_on_after(KILL_WAIT_S):
            return await self.process.wait()
        return None

    async def kill(self) -> None:
        """Kill the process (by PID), reap it and close its pipes; safe to call on one that has ended."""
        if self.process.returncode is None:
            self.process.kill()
        with trio.move_on_after(KILL_WAIT_S, shield=True):
            await self.process.wait()
            for pipe in (self.process.stdin, self.process.stdout):
                if pipe is not None:
                    await pipe.aclose()

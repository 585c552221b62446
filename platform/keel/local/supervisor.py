"""Starts the node processes of a local cluster and watches them.

A node that dies is reported through `on_exit` and left dead: restarting it
behind the operator's back would hide the crash a test or an operator needs
to see. `stop` asks every node to stop (SIGTERM), waits up to a grace
period, then kills what is left (SIGKILL).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any

import trio

from keel.local.topology import NodePlan

__all__ = ["STOP_GRACE_S", "Supervisor", "node_command"]

STOP_GRACE_S = 10.0  # seconds a node gets to stop after SIGTERM before SIGKILL
KILL_WAIT_S = 5.0  # seconds to reap a process after SIGKILL


def node_command(node: NodePlan, *, python: str = sys.executable) -> list[str]:
    """The command that runs one node of the cluster."""
    return [python, "-m", "keel", "node", "--config", str(node.config_path), "--exit-with-parent", str(os.getpid())]


class Supervisor:
    """Runs one process per node; `run` returns once every process has ended."""

    def __init__(self, nodes: Sequence[NodePlan], *, on_exit: Callable[[NodePlan, int], None]) -> None:
        self.nodes = tuple(nodes)
        self.processes: dict[str, trio.Process] = {}
        self._on_exit = on_exit
        self._stopping = False
        self._logs: list[IO[bytes]] = []

    @property
    def running(self) -> list[str]:
        return [node_id for node_id, proc in self.processes.items() if proc.returncode is None]

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Start every node, `started()` once all are spawned, and watch them."""
        try:
            async with trio.open_nursery() as nursery:
                for node in self.nodes:
                    log = open(node.log_path, "ab")  # noqa: SIM115 - closed in finally, after the process ends
                    self._logs.append(log)
                    proc = await trio.lowlevel.open_process(
                        node_command(node),
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        # Own session: a Ctrl-C in the terminal reaches `keel up`,
                        # which stops the nodes in order, not every node at once.
                        start_new_session=True,
                    )
                    self.processes[node.id] = proc
                    nursery.start_soon(self._watch, node, proc)
                task_status.started()
        finally:
            with trio.CancelScope(shield=True):
                await self.stop()
                for log in self._logs:
                    log.close()

    async def _watch(self, node: NodePlan, proc: trio.Process) -> None:
        status = await proc.wait()
        if not self._stopping:
            self._on_exit(node, status)

    async def stop(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM every node, wait up to `grace` seconds, SIGKILL the rest. Idempotent."""
        self._stopping = True
        live = [p for p in self.processes.values() if p.returncode is None]
        for proc in live:
            _signal(proc, signal.SIGTERM)
        with trio.move_on_after(grace):
            for proc in live:
                await proc.wait()
        for proc in live:
            if proc.returncode is None:
                _signal(proc, signal.SIGKILL)
        with trio.move_on_after(KILL_WAIT_S):
            for proc in live:
                await proc.wait()


def _signal(proc: trio.Process, signum: int) -> None:
    try:
        proc.send_signal(signum)
    except ProcessLookupError:  # it ended between the check and the signal
        pass

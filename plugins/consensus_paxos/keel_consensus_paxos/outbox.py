"""What the engine has to say between two polls, gathered into one `Ready`.

Theory of operation. Handlers only append here; `take` hands everything
over and starts afresh. Log operations keep their order, and consecutive
plain `Append`s merge into one, so many proposals between two polls reach
the driver as one append and one fsync (group commit). The promised ballot
is written at most once per `Ready`, first, as it stands at `take`: every
promise and every acceptance leaves only after the ballot it was made under
is durable. A leader's Accepts and heartbeats go in `send_early`: they
depend on nothing in this `Ready` (its ballot was durable before any
acceptor could promise it, and it counts its own acceptances only once
durable, through its note to itself, which waits in `send`).
"""

from __future__ import annotations

from typing import Any

from keel import wire
from keel.consensus import Append, Entry, LeaderChanged, LogOp, Outbound, Ready, ReadReady, RoleChanged, SaveStable, \
    SnapshotToInstall

from keel_consensus_paxos.messages import Stable

__all__ = ["Outbox"]


class Outbox:
    """The pieces of the next `Ready`."""

    def __init__(self) -> None:
        self._clear()

    def _clear(self) -> None:
        self._stable: Stable | None = None
        self._persist: list[LogOp] = []
        self._send: list[Outbound] = []
        self._early: list[Outbound] = []
        self._install: SnapshotToInstall | None = None
        self._reads: list[ReadReady] = []
        self._events: list[RoleChanged | LeaderChanged] = []

    def save_stable(self, promised: int) -> None:
        """The promised ballot rose: persist it before anything sent from now on."""
        self._stable = Stable(promised=promised)

    def log_op(self, op: LogOp) -> None:
        last = self._persist[-1] if self._persist else None
        # Merge only an Append that follows the previous one; a replacing Append stays its own record.
        if isinstance(op, Append) and isinstance(last, Append) and op.entries and last.entries \
                and op.entries[0].index == last.entries[-1].index + 1:
            self._persist[-1] = Append(last.entries + op.entries)
        else:
            self._persist.append(op)

    def send(self, dst: str, message: Any, *, early: bool = False) -> None:
        (self._early if early else self._send).append(Outbound(dst, message))

    def install(self, snapshot: SnapshotToInstall) -> None:
        self._install = snapshot

    def read(self, ready: ReadReady) -> None:
        self._reads.append(ready)

    def event(self, event: RoleChanged | LeaderChanged) -> None:
        self._events.append(event)

    def take(self, committed: tuple[Entry, ...]) -> Ready:
        """Everything gathered, with `committed`, and start afresh."""
        persist = tuple(self._persist)
        if self._stable is not None:
            persist = (SaveStable(wire.encode(self._stable)),) + persist
        ready = Ready(persist=persist, send_early=tuple(self._early), send=tuple(self._send), install=self._install,
                      committed=committed, reads=tuple(self._reads), events=tuple(self._events))
        self._clear()
        return ready

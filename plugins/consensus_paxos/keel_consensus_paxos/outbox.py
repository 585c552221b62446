"""What the engine has to say between two polls, gathered into one `Ready`.

Theory of operation. Handlers only append here; `take` hands everything
over and starts afresh. Log operations keep their order, and consecutive
plain `Append`s merge into one, so many proposals between two polls reach
the driver as one append and one fsync (group commit).

The stable state (`Stable`: the promised ballot and the commit watermark)
is written at most twice per `Ready`. A raised promise goes first, so every
promise and acceptance leaves only after the ballot it was made under is
durable. A raised commit index goes last, after the log operations: it
says the slots up to it hold chosen values, which must not survive a torn
write that lost those slots. After a restart the watermark spares the node
from re-learning, and a candidate from recovering, slots long chosen (and
the configurations chosen in them).

A leader's Accepts and heartbeats go in `send_early`: they depend on
nothing in this `Ready` (its ballot was durable before any acceptor could
promise it, and it counts its own acceptances only once durable, through
its note to itself, which waits in `send`), except when this `Ready`
raises the promise itself, as a lone voter does that wins at once: then
they wait for it, or a crash could reuse the ballot for other values.
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

    def __init__(self, commit: int = 0) -> None:
        self._saved_commit = commit  # the watermark the durable Stable holds
        self._clear()

    def _clear(self) -> None:
        self._raised = False
        self._persist: list[LogOp] = []
        self._send: list[Outbound] = []
        self._early: list[Outbound] = []
        self._install: SnapshotToInstall | None = None
        self._reads: list[ReadReady] = []
        self._events: list[RoleChanged | LeaderChanged] = []

    def save_stable(self, promised: int) -> None:
        """The promised ballot rose (to `promised`, which `take` is given): persist it before anything sent now."""
        self._raised = True

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

    def take(self, committed: tuple[Entry, ...], promised: int, commit: int) -> Ready:
        """Everything gathered, with `committed`, the stable state as it stands, and start afresh."""
        persist = tuple(self._persist)
        early, send = tuple(self._early), tuple(self._send)
        if self._raised:
            persist = (SaveStable(wire.encode(Stable(promised=promised, commit=self._saved_commit))),) + persist
            early, send = (), early + send
        if commit > self._saved_commit:
            persist += (SaveStable(wire.encode(Stable(promised=promised, commit=commit))),)
            self._saved_commit = commit
        ready = Ready(persist=persist, send_early=early, send=send, install=self._install,
                      committed=committed, reads=tuple(self._reads), events=tuple(self._events))
        self._clear()
        return ready

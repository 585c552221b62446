"""What the engine has to say between two polls, gathered into one `Ready`.

Theory of operation. Handlers only append here; `take` hands everything
over and starts afresh. Log operations keep their order, and consecutive
`Append`s merge into one, so many proposals between two polls reach the
driver as one append and one fsync (group commit). The stable state (term
and vote) is written at most once per `Ready`, as it stands at `take`: the
driver makes all of `persist` durable before any of `send` leaves, so every
message is sent on top of the term and vote it was decided under. A
leader's appends and heartbeats go in `send_early` instead: they depend on
nothing in this `Ready` (the leader's term was durable before it could win
votes, and it counts its own log only once durable, through its own
acknowledgement, which waits in `send`), so followers write the entries
while the leader does, not after (thesis §10.2.1). Only when this `Ready`
raises the term itself (a lone voter that won at once) do they wait too.
"""

from __future__ import annotations

from typing import Any

from keel import wire
from keel.consensus import Append, Entry, LeaderChanged, LogOp, Outbound, Ready, ReadReady, RoleChanged, SaveStable, \
    SnapshotToInstall

from keel_consensus_raft.messages import HardState

__all__ = ["Outbox"]


class Outbox:
    """The pieces of the next `Ready`."""

    def __init__(self) -> None:
        self._clear()

    def _clear(self) -> None:
        self._stable: HardState | None = None
        self._persist: list[LogOp] = []
        self._send: list[Outbound] = []
        self._early: list[Outbound] = []
        self._install: SnapshotToInstall | None = None
        self._reads: list[ReadReady] = []
        self._events: list[RoleChanged | LeaderChanged] = []

    def save_stable(self, term: int, vote: str | None) -> None:
        """Term or vote changed: persist them before anything sent from now on."""
        self._stable = HardState(term=term, vote=vote)

    def log_op(self, op: LogOp) -> None:
        last = self._persist[-1] if self._persist else None
        if isinstance(op, Append) and isinstance(last, Append):
            self._persist[-1] = Append(last.entries + op.entries)
        else:
            self._persist.append(op)

    def send(self, dst: str, message: Any, *, early: bool = False) -> None:
        (self._early if early else self._send).append(Outbound(dst, message))

    def install(self, snapshot: SnapshotToInstall) -> None:
        """Replace the state machine; a later snapshot in the same poll supersedes this one."""
        self._install = snapshot

    def read(self, ready: ReadReady) -> None:
        self._reads.append(ready)

    def event(self, event: RoleChanged | LeaderChanged) -> None:
        self._events.append(event)

    def take(self, committed: tuple[Entry, ...]) -> Ready:
        """Everything gathered, with `committed` (what the engine commits now), and start afresh."""
        persist = tuple(self._persist)
        early, send = tuple(self._early), tuple(self._send)
        if self._stable is not None:
            persist = (SaveStable(wire.encode(self._stable)),) + persist
            # A term raised in this very Ready (a lone voter elects itself at once) is not durable yet:
            # its appends wait for it like everything else, or a crash could reuse the term for other entries.
            early, send = (), early + send
        ready = Ready(persist=persist, send_early=early, send=send, install=self._install, committed=committed,
                      reads=tuple(self._reads), events=tuple(self._events))
        self._clear()
        return ready

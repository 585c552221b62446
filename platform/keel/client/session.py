"""A client's session: its id, the numbers of its mutating requests, the `acked` watermark and the window.

The core's session table (`keel.core.sessions`) answers a retried
(client, seq) with its first answer, so a request retried after a timeout
or a leader change is applied once. This object keeps the client's half:

- every mutating request gets the next seq, from 1; its retries keep it
  (and the session id it began under);
- `acked` is the highest seq such that every seq up to it is settled:
  answered, or given up by a call that ran out of time (the client never
  sends it again, and a late copy still in some log is then refused by the
  table instead of applied);
- **the window**: a new seq is issued only while it is at most `window`
  above the acked it would carry (`room()`); otherwise the call waits until
  an older request settles. One request held back (its answer lost, its
  retry waiting out a failover) thus holds back the client's newest ones
  after `window` others, and never loses its answer in the core, which
  keeps exactly the answers within the window. Unsettled requests, not
  requests in flight, fill the window: with fewer than `window` calls
  running at once it never waits;
- `acked` stays 0 until some request was answered: the table takes
  `acked > 0` from a client it has no session for as an expired session,
  and a session starts with the first answer it records; a client whose
  first `window` requests all went unanswered (the core was down) starts a
  new session rather than wait forever;
- when the core says the session expired (`SessionExpired`), the next
  request starts a new one under a new id; requests still in flight under
  the old id keep it, and its acked, to the end.

Plain data, no I/O: the caller waits for room (`keel.client.caller`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from keel.core.api import SESSION_WINDOW

__all__ = ["CLIENT_ID_BYTES", "Session"]

CLIENT_ID_BYTES = 12  # random bytes in a client id; collisions between clients are out of the question
RETIRED_KEPT = 16  # expired session ids whose acked is remembered for their requests still in flight


class Session:
    """Sequence numbers, the acked watermark and the window of one client id at a time."""

    def __init__(self, client_id: str | None = None, *, window: int = SESSION_WINDOW,
                 new_id: Callable[[], str] = lambda: secrets.token_hex(CLIENT_ID_BYTES)) -> None:
        if window < 1:
            raise ValueError(f"session window {window} must be at least 1")
        self._new_id = new_id  # makes the id of each new session (a simulation's are deterministic)
        self.client = client_id if client_id is not None else new_id()
        self.window = window
        self._next = 1
        self._open: set[int] = set()  # issued, neither answered nor given up
        self._answered_any = False
        self._retired: dict[str, int] = {}  # expired id -> the acked its last requests carried

    def room(self) -> bool:
        """Whether a new request may be issued now: its seq would be within the window above its acked."""
        if not self._answered_any and not self._open and self._next > self.window:
            self._renew()  # none of its requests was ever answered: nothing of it is worth keeping
        return self._next - self.acked <= self.window

    def begin(self) -> tuple[str, int]:
        """The session id and seq for a new mutating request; only when `room()`."""
        if not self.room():
            raise ValueError(f"session {self.client}: seq {self._next} would be beyond the window of {self.window} "
                             f"above acked {self.acked}; wait for room()")
        seq = self._next
        self._next += 1
        self._open.add(seq)
        return self.client, seq

    def settle(self, client: str, seq: int, *, answered: bool) -> None:
        """`seq` of session `client` will not be sent again: it was answered, or its call gave up."""
        if client != self.client:
            return  # an expired session: nothing of it counts any more
        self._open.discard(seq)
        self._answered_any = self._answered_any or answered

    @property
    def unsettled(self) -> int:
        """Requests of the current session neither answered nor given up."""
        return len(self._open)

    @property
    def acked(self) -> int:
        """What a request of the current session tells the core it may forget."""
        if not self._answered_any:
            return 0
        return min(self._open) - 1 if self._open else self._next - 1

    def acked_for(self, client: str) -> int:
        """The acked to send with a request of session `client` (the current one or an expired one)."""
        return self.acked if client == self.client else self._retired.get(client, 0)

    def expired(self, client: str) -> None:
        """The core forgot session `client`: if it is the current one, the next request starts a new one."""
        if client != self.client:
            return
        self._retired[client] = self.acked
        while len(self._retired) > RETIRED_KEPT:
            del self._retired[next(iter(self._retired))]
        self._renew()

    def _renew(self) -> None:
        self.client = self._new_id()
        self._next = 1
        self._open = set()
        self._answered_any = False

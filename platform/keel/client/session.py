"""A client's session: its id, the numbers of its mutating requests, and the `acked` watermark.

The core's session table (`keel.core.sessions`) answers a retried
(client, seq) with its first answer, so a request retried after a timeout
or a leader change is applied once. This object keeps the client's half:

- every mutating request gets the next seq, from 1; its retries keep it
  (and the session id it began under);
- `acked` is the highest seq such that every seq up to it is settled:
  answered, or given up by a call that ran out of time (the client never
  sends it again, and a late copy still in some log is then refused by the
  table instead of applied);
- `acked` stays 0 until some request was answered: the table takes
  `acked > 0` from a client it has no session for as an expired session,
  and a session starts with the first answer it records;
- when the core says the session expired (`SessionExpired`), the next
  request starts a new one under a new id; requests still in flight under
  the old id keep it, and its acked, to the end.

Plain data, no I/O: the blocking `Client` keeps one across many `trio.run`s.
"""

from __future__ import annotations

import secrets

__all__ = ["CLIENT_ID_BYTES", "Session"]

CLIENT_ID_BYTES = 12  # random bytes in a client id; collisions between clients are out of the question
RETIRED_KEPT = 16  # expired session ids whose acked is remembered for their requests still in flight


class Session:
    """Sequence numbers and the acked watermark of one client id at a time."""

    def __init__(self, client_id: str | None = None) -> None:
        self.client = client_id if client_id is not None else secrets.token_hex(CLIENT_ID_BYTES)
        self._next = 1
        self._open: set[int] = set()  # issued, neither answered nor given up
        self._answered_any = False
        self._retired: dict[str, int] = {}  # expired id -> the acked its last requests carried

    def begin(self) -> tuple[str, int]:
        """The session id and seq for a new mutating request."""
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
        self.client = secrets.token_hex(CLIENT_ID_BYTES)
        self._next = 1
        self._open = set()
        self._answered_any = False

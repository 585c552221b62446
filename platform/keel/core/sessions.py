"""Client sessions: a retried request is applied once and answered with its first answer.

The Idempotent Receiver (Raft thesis §6.3). Every mutating request carries
its client's id and a sequence number; the table remembers, per client,
the answers to requests the client may still retry: those above the
`acked` watermark it sends (every seq up to `acked` has been answered and
will not be asked again). When a request arrives a second time (a client
retried after a timeout, at another node, or the network duplicated it),
the state machine returns the remembered answer instead of applying it.

The table is bounded, and both bounds are deterministic, since every
replica must forget the same sessions at the same index:
- a session idle for `idle_expiry` seconds of *log time* (the leader's
  clock, stamped on each command) is dropped;
- beyond `max_sessions`, the least recently used is dropped;
- a client keeps at most `max_pending` answers; beyond that its oldest go.
A request from a client the table forgot (acked > 0 but no session), or
with a seq it already dropped, is refused with `SessionExpired`: it is not
applied now, but an earlier attempt may have been, and only the client can
tell. A late duplicate of a request the client has already acknowledged
gets the same refusal, which nobody waits for. One hole remains: a client
forgotten before its first answer arrived (acked still 0) looks new, so a
retry of its first requests would apply again; that takes an hour of
silence with a request in flight, or more than `max_sessions` new clients
meanwhile.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import attrs

from keel.errors import SessionExpired

__all__ = ["DEFAULT_IDLE_EXPIRY_S", "DEFAULT_MAX_PENDING", "DEFAULT_MAX_SESSIONS", "Session", "SessionTable"]

DEFAULT_MAX_SESSIONS = 10_000  # clients remembered at once; each costs its pending answers
DEFAULT_MAX_PENDING = 1024  # answers kept per client; more than any client keeps in flight
DEFAULT_IDLE_EXPIRY_S = 3600.0  # seconds of log time; a client silent this long starts over


@attrs.define
class Session:
    acked: int = 0  # answers up to here were forgotten at the client's word
    last_used: float = 0.0  # log time of its last request
    answers: dict[int, Any] = attrs.Factory(dict)  # seq -> the encoded answer


class SessionTable:
    """Answers by (client, seq), bounded and expiring deterministically."""

    def __init__(self, *, max_sessions: int = DEFAULT_MAX_SESSIONS, max_pending: int = DEFAULT_MAX_PENDING,
                 idle_expiry: float = DEFAULT_IDLE_EXPIRY_S) -> None:
        self.max_sessions = max_sessions
        self.max_pending = max_pending
        self.idle_expiry = idle_expiry
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # least recently used first
        self.log_time = 0.0  # the latest leader time seen in the log

    def __len__(self) -> int:
        return len(self._sessions)

    def lookup(self, client: str, seq: int, acked: int, at: float) -> tuple[bool, Any]:
        """Before applying (client, seq): (True, answer) if it was answered before, else (False, None).

        Also forgets what `acked` allows and expires idle sessions as of log time `at`.

        Raises:
            SessionExpired: the request can no longer be told apart from an
                applied one (its session or its answer was forgotten); the
                message says why.
        """
        self._advance(at)
        session = self._sessions.get(client)
        if session is None:
            if acked > 0:
                raise SessionExpired(f"session {client}: expired (idle or evicted); its requests may or may not "
                                 f"have been applied")
            return False, None
        self._sessions.move_to_end(client)
        session.last_used = self.log_time
        if acked > session.acked:
            for old in [s for s in session.answers if s <= acked]:
                del session.answers[old]
            session.acked = acked
        if seq in session.answers:
            return True, session.answers[seq]
        if seq <= session.acked:
            raise SessionExpired(f"session {client}: request {seq} was answered and acknowledged before")
        return False, None

    def record(self, client: str, seq: int, answer: Any) -> None:
        """Remember the answer to (client, seq)."""
        session = self._sessions.get(client)
        if session is None:
            session = self._sessions[client] = Session(last_used=self.log_time)
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        session.answers[seq] = answer
        while len(session.answers) > self.max_pending:
            oldest = min(session.answers)
            del session.answers[oldest]
            session.acked = max(session.acked, oldest)

    def _advance(self, at: float) -> None:
        self.log_time = max(self.log_time, at)
        while self._sessions:
            client, oldest = next(iter(self._sessions.items()))
            if self.log_time - oldest.last_used <= self.idle_expiry:
                break
            del self._sessions[client]

    # --- snapshots ---------------------------------------------------------------------

    def dump(self) -> tuple[float, list[tuple[str, int, float, list[tuple[int, Any]]]]]:
        return self.log_time, [(client, s.acked, s.last_used, sorted(s.answers.items()))
                               for client, s in self._sessions.items()]

    def load(self, log_time: float, sessions: list[tuple[str, int, float, list[tuple[int, Any]]]]) -> None:
        self.log_time = log_time
        self._sessions = OrderedDict(
            (client, Session(acked=acked, last_used=last_used, answers=dict(answers)))
            for client, acked, last_used, answers in sessions
        )

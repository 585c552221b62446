"""Client sessions: a retried request is applied once and answered with its first answer.

The Idempotent Receiver (Raft thesis §6.3). Every mutating request carries
its client's id, a sequence number, and the client's `acked` watermark
(every seq up to it is settled: answered, or given up by its call, and
will not be sent again). The table remembers, per client, the answers
above `acked`; a request that arrives again (a retry after a timeout, at
another node, or a copy the network duplicated) gets its first answer
instead of being applied again.

**A window bounds the memory per client, not a cap that drops answers.** A
request's seq may be at most `window` above the acked it carries
(`keel.core.api.SESSION_WINDOW`); the client waits before it issues a seq
beyond that (`keel.client.session`). The table's acked for a client only
grows, and is at least the acked of every request it applied, so every
answer it holds has a seq in (acked, acked + window]: at most `window`
answers, and never one dropped while its client may still ask for it. A
request beyond the window is refused and not applied; the rule reads only
the request's own fields, so its bytes get the same refusal wherever and
whenever they are applied. (The rule before this one kept at most a
number of answers and dropped the oldest beyond it: a request held back by
retries across a failover could be passed by more than that many later
requests, and its retry then found its answer gone and was refused as
"acknowledged" while its client still waited for it.)

Sessions themselves are bounded deterministically, since every replica
must forget the same sessions at the same index:
- a session idle for `idle_expiry` seconds of *log time* (the leader's
  clock, stamped on each command) is dropped;
- beyond `max_sessions`, the least recently used is dropped.

What is refused, with `SessionExpired`, and what the message says:
- a request of a client the table forgot (it carries acked > 0, but there
  is no session): the message says whether the session idled out or was
  evicted (the table remembers that for the last `max_sessions` clients it
  forgot). It is not applied now; an earlier attempt may have been, and
  only the client can tell: keel's client sends a request refused on its
  first attempt again under a new session, since nothing of it was applied,
  and raises only where an earlier attempt may have landed;
- a late copy of a request the client already acknowledged (seq <= acked):
  its client settled it, so nobody waits for this answer.

One hole remains: a client forgotten before its first answer arrived
(acked still 0) looks new, so a retry of its first requests would apply
again; that takes an hour of silence with a request in flight, or more than
`max_sessions` new clients meanwhile.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import attrs

from keel.core.api import SESSION_WINDOW
from keel.errors import KeelError, SessionExpired

__all__ = ["DEFAULT_IDLE_EXPIRY_S", "DEFAULT_MAX_SESSIONS", "IDLE", "EVICTED", "Session", "SessionTable"]

DEFAULT_MAX_SESSIONS = 10_000  # clients remembered at once; each costs up to `window` answers
DEFAULT_IDLE_EXPIRY_S = 3600.0  # seconds of log time; a client silent this long starts over
IDLE = 0  # why a session was forgotten: no request for `idle_expiry` seconds of log time
EVICTED = 1  # ... or the least recently used, beyond `max_sessions`


@attrs.define
class Session:
    acked: int = 0  # answers up to here were forgotten at the client's word
    last_used: float = 0.0  # log time of its last request
    answers: dict[int, Any] = attrs.Factory(dict)  # seq -> the answer; seqs in (acked, acked + window]


class SessionTable:
    """Answers by (client, seq), bounded and expiring deterministically."""

    def __init__(self, *, max_sessions: int = DEFAULT_MAX_SESSIONS, window: int = SESSION_WINDOW,
                 idle_expiry: float = DEFAULT_IDLE_EXPIRY_S) -> None:
        self.max_sessions = max_sessions
        self.window = window
        self.idle_expiry = idle_expiry
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # least recently used first
        self._forgotten: OrderedDict[str, int] = OrderedDict()  # client -> IDLE or EVICTED, oldest first
        self.log_time = 0.0  # the latest leader time seen in the log

    def __len__(self) -> int:
        return len(self._sessions)

    def lookup(self, client: str, seq: int, acked: int, at: float) -> tuple[bool, Any]:
        """Before applying (client, seq): (True, answer) if it was answered before, else (False, None).

        Also forgets what `acked` allows and expires idle sessions as of log time `at`.

        Raises:
            SessionExpired: the request can no longer be told apart from an
                applied one (its session was forgotten, or the client
                acknowledged it); the message says which.
            KeelError: `seq` is more than the window above `acked` (a
                client that does not keep the window); nothing was applied.
        """
        self._advance(at)
        session = self._sessions.get(client)
        if session is None:
            if acked > 0:
                raise SessionExpired(self._gone(client))
            self._check_window(client, seq, acked)
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
            raise SessionExpired(f"session {client}: request {seq} is a late copy of one the client acknowledged "
                                 f"(it settled every request up to {session.acked}); not applied")
        self._check_window(client, seq, acked)
        return False, None

    def record(self, client: str, seq: int, answer: Any) -> None:
        """Remember the answer to (client, seq), which `lookup` just let through."""
        session = self._sessions.get(client)
        if session is None:
            session = self._sessions[client] = Session(last_used=self.log_time)
            self._forgotten.pop(client, None)
            while len(self._sessions) > self.max_sessions:
                gone, _ = self._sessions.popitem(last=False)
                self._forget(gone, EVICTED)
        session.answers[seq] = answer

    def _check_window(self, client: str, seq: int, acked: int) -> None:
        if seq - acked > self.window:
            raise KeelError(f"session {client}: request {seq} is {seq - acked} above the acknowledged {acked}, "
                            f"beyond the window of {self.window} requests a client may have unsettled; not applied")

    def _gone(self, client: str) -> str:
        why = self._forgotten.get(client)
        if why == IDLE:
            reason = f"expired after more than {self.idle_expiry:g} s without a request"
        elif why == EVICTED:
            reason = f"evicted, as the least recently used beyond the {self.max_sessions} sessions the core keeps"
        else:
            reason = "unknown to the core (expired or evicted long ago)"
        return f"session {client}: {reason}; its requests that got no answer may or may not have been applied"

    def _forget(self, client: str, why: int) -> None:
        self._forgotten[client] = why
        while len(self._forgotten) > self.max_sessions:
            self._forgotten.popitem(last=False)

    def _advance(self, at: float) -> None:
        self.log_time = max(self.log_time, at)
        while self._sessions:
            client, oldest = next(iter(self._sessions.items()))
            if self.log_time - oldest.last_used <= self.idle_expiry:
                break
            del self._sessions[client]
            self._forget(client, IDLE)

    # --- snapshots ---------------------------------------------------------------------

    def dump(self) -> tuple[float, list[tuple[str, int, float, list[tuple[int, Any]]]], list[tuple[str, int]]]:
        """(log time, sessions least recently used first, forgotten clients oldest first); for `load`."""
        return (self.log_time,
                [(client, s.acked, s.last_used, sorted(s.answers.items())) for client, s in self._sessions.items()],
                list(self._forgotten.items()))

    def load(self, log_time: float, sessions: list[tuple[str, int, float, list[tuple[int, Any]]]],
             forgotten: Iterable[tuple[str, int]] = ()) -> None:
        self.log_time = log_time
        self._sessions = OrderedDict(
            (client, Session(acked=acked, last_used=last_used, answers=dict(answers)))
            for client, acked, last_used, answers in sessions
        )
        self._forgotten = OrderedDict(forgotten)

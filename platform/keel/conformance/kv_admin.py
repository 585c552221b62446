"""A simulated operator who changes the conformance cluster's membership: a `keel.sim` node.

The operator works through a list of goals in order, each a state one
server should reach: `("voter", node)` (add it as a learner, then promote
it once it has caught up) or `("out", node)` (remove it). Every `step`
seconds it sends the one change that moves the current goal forward, as
seen in the configuration the servers last reported (`ChangeReply`), to
the server it believes leads. A refused change (a learner not yet caught
up, another change still in flight) is simply asked again at the next
step; a change that was lost with a crashed leader shows up as a goal not
met and is asked again too. The operator never crashes; it stops at
`stop_at`, so the cluster ends the run calm.
"""

from __future__ import annotations

import random
from typing import Any

import attrs

from keel.conformance.kv import ChangeReply, ChangeRequest
from keel.sim import Output

__all__ = ["ChangeMade", "Operator"]


@attrs.frozen
class ChangeMade:
    """Event: a server took `action` on `node` into its log."""

    action: str
    node: str


class Operator:
    """Moves the membership through `goals`, one server change at a time."""

    def __init__(self, node_id: str, rng: random.Random, *, servers: tuple[str, ...], voters: tuple[str, ...],
                 goals: tuple[tuple[str, str], ...], step: float, start_at: float, stop_at: float) -> None:
        self.node_id = node_id
        self.rng = rng
        self.servers = servers
        self.goals = list(goals)
        self.step = step  # seconds between requests
        self.stop_at = stop_at  # local time after which no request is sent
        self.voters, self.learners = voters, ()  # the configuration last reported
        self.leader = rng.choice(voters)
        self.seq = 0
        self._last = ("", "")  # the change asked for under `seq`
        self.next_at = start_at
        self._send: list[tuple[str, Any]] = []
        self._events: list[Any] = []

    def tick(self, now: float) -> None:
        if now < self.next_at or now >= self.stop_at:
            return
        self.next_at = now + self.step
        change = self._next_change()
        if change is not None:
            self.seq += 1
            self._send.append((self.leader, ChangeRequest(self.seq, *change)))

    def receive(self, src: str, message: Any) -> None:
        if not isinstance(message, ChangeReply) or message.seq != self.seq:
            return
        if message.outcome == "redirect":
            hinted = message.leader_hint in self.servers and message.leader_hint != src
            self.leader = message.leader_hint if hinted else self.rng.choice([s for s in self.servers if s != src])  # type: ignore[assignment]
            return
        self.leader = src
        self.voters, self.learners = message.voters, message.learners
        if message.outcome == "ok":
            self._events.append(ChangeMade(*self._last))

    def poll(self) -> Output:
        out = Output(send=self._send, events=self._events)
        self._send, self._events = [], []
        return out

    def _next_change(self) -> tuple[str, str] | None:
        """The change that moves the first unmet goal forward; None once every goal is met."""
        while self.goals:
            want, node = self.goals[0]
            if want == "voter" and node not in self.voters:
                self._last = ("promote", node) if node in self.learners else ("add_learner", node)
                return self._last
            if want == "out" and node in self.voters + self.learners:
                self._last = ("remove", node)
                return self._last
            self.goals.pop(0)
        return None

"""What a leader knows about one follower's log, and how fast it may send to it.

Theory of operation. `match` is the highest index known to be in the
follower's log (acknowledged in this term, so it never goes down while this
node leads); `next` is the first index to send. Three modes decide how
`next` moves:

- PROBE: `next` is a guess. One AppendEntries at a time; a rejection moves
  `next` back (using the follower's hint), a success switches to REPLICATE.
  A probe lost in the network is sent again after a heartbeat interval.
- REPLICATE: the follower's log is known to match up to `match`, so `next`
  runs ahead optimistically: up to `max_inflight` AppendEntries are in
  flight at once (pipelining), their last indexes queued in `inflight` and
  released as acknowledgements arrive (flow control). A rejection, or no
  progress for a few heartbeats while entries are outstanding (a message
  lost), drops back to PROBE from `match + 1`.
- SNAPSHOT: the entries the follower needs are compacted away, so the
  leader ships its snapshot, one chunk in flight at a time, and probes
  again once the follower has installed it.
"""

from __future__ import annotations

import enum
from collections import deque

import attrs

__all__ = ["Mode", "Progress"]


class Mode(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


@attrs.define
class Progress:
    """The leader's view of one peer (or of itself: only `match` is used then)."""

    match: int = 0
    next: int = 1
    mode: Mode = Mode.PROBE
    paused: bool = False  # PROBE: a probe is out; SNAPSHOT: a chunk is out
    inflight: deque[int] = attrs.Factory(deque)  # REPLICATE: last index of each append in flight, ascending
    active: bool = False  # heard from since the leader last checked its quorum
    acked_beat: int = 0  # highest read-index round this peer has echoed
    progressed: bool = False  # acknowledged something new since the last heartbeat tick
    stalled: int = 0  # heartbeat ticks in a row with entries outstanding and no progress
    snapshot_index: int = 0  # SNAPSHOT: index of the snapshot being shipped
    offset: int = 0  # SNAPSHOT: bytes of it the follower holds

    def can_send(self, max_inflight: int) -> bool:
        """Whether another message may go to this peer now."""
        if self.mode is Mode.REPLICATE:
            return len(self.inflight) < max_inflight
        return not self.paused

    def outstanding(self) -> bool:
        """Whether something was sent that has not been acknowledged."""
        if self.mode is Mode.REPLICATE:
            return self.next > self.match + 1
        return self.paused

    def sent(self, last: int) -> None:
        """An AppendEntries carrying entries up to `last` (or none, probing at `next - 1`) left."""
        if self.mode is Mode.REPLICATE:
            if last >= self.next:
                self.inflight.append(last)
                self.next = last + 1
        else:
            self.paused = True

    def acked(self, index: int) -> bool:
        """The peer holds the leader's log up to `index`; returns whether sending may resume."""
        resume = False
        if index > self.match:
            self.match = index
            self.progressed = True
            resume = True
            while self.inflight and self.inflight[0] <= index:
                self.inflight.popleft()
        self.next = max(self.next, self.match + 1)
        if self.mode is Mode.PROBE and index >= self.match:
            self.become_replicate()
            resume = True
        elif self.mode is Mode.SNAPSHOT and self.match >= self.snapshot_index:
            self.become_probe(self.match + 1)
            resume = True
        return resume

    def rejected(self, rejected: int, guess: int) -> bool:
        """The append probing at `rejected` did not match; `guess` is where to look next.

        Returns whether the rejection was current (a stale one changes nothing).
        """
        if self.mode is Mode.REPLICATE:
            if rejected <= self.match:
                return False
            self.become_probe(min(guess, rejected))
            return True
        if self.mode is Mode.PROBE:
            if rejected != self.next - 1:
                return False
            self.become_probe(min(guess, rejected))
            return True
        return False

    def chunk_acked(self, index: int, offset: int, done: bool) -> bool:
        """The peer answered a snapshot chunk; returns whether to send again."""
        if self.mode is not Mode.SNAPSHOT or index != self.snapshot_index:
            return False
        self.progressed = True
        if done:
            self.match = max(self.match, index)
            self.become_probe(self.match + 1)
        else:
            self.offset = offset
            self.paused = False
        return True

    def become_probe(self, next_index: int) -> None:
        self.mode = Mode.PROBE
        self.next = max(self.match + 1, next_index)
        self.paused = False
        self.inflight.clear()
        self.stalled = 0

    def become_replicate(self) -> None:
        self.mode = Mode.REPLICATE
        self.next = self.match + 1
        self.paused = False
        self.inflight.clear()
        self.stalled = 0

    def become_snapshot(self, index: int) -> None:
        self.mode = Mode.SNAPSHOT
        self.snapshot_index = index
        self.offset = 0
        self.paused = False
        self.inflight.clear()
        self.stalled = 0

    def heartbeat_tick(self, stall_limit: int) -> None:
        """A heartbeat interval passed: resend a lost probe or chunk, rewind a stalled pipeline."""
        if self.outstanding() and not self.progressed:
            self.stalled += 1
        else:
            self.stalled = 0
        self.progressed = False
        if self.stalled == 0:
            return
        if self.mode is Mode.REPLICATE:
            if self.stalled >= stall_limit:
                self.become_probe(self.match + 1)
        else:
            self.paused = False

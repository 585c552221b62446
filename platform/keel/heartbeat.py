"""Heartbeats between nodes, and what they tell about each peer.

Every node sends a `Heartbeat` to each peer it keeps a link to, every
`timeouts.heartbeat` seconds. `PeerLiveness` is sans-I/O: the driver tells it
when a heartbeat arrived and what time it is, and asks which peers were heard
recently. A consensus engine keeps its own, stricter failure detection; this
one feeds `keel status` and the observation hooks.
"""

from __future__ import annotations

import attrs

from keel.wire import message

__all__ = ["SUSPECT_AFTER_BEATS", "Heartbeat", "PeerLiveness", "PeerSeen"]

SUSPECT_AFTER_BEATS = 5  # heartbeats missed in a row before a peer counts as not heard


@message("keel.heartbeat")
@attrs.frozen
class Heartbeat:
    """I am alive. `incarnation` changes when the sender restarts."""

    node_id: str
    incarnation: int


@attrs.frozen
class PeerSeen:
    """What heartbeats tell about one peer."""

    peer: str
    alive: bool
    last_heard: float | None  # seconds ago, None if never
    restarts: int  # incarnation changes seen since this node started


@attrs.define
class PeerLiveness:
    """Tracks the last heartbeat from each peer."""

    interval: float  # seconds between heartbeats
    _last: dict[str, float] = attrs.Factory(dict)
    _incarnation: dict[str, int] = attrs.Factory(dict)
    _restarts: dict[str, int] = attrs.Factory(dict)

    def heard(self, beat: Heartbeat, now: float) -> bool:
        """Record a heartbeat; True when it shows the peer restarted."""
        previous = self._incarnation.get(beat.node_id)
        self._incarnation[beat.node_id] = beat.incarnation
        self._last[beat.node_id] = now
        restarted = previous is not None and previous != beat.incarnation
        if restarted:
            self._restarts[beat.node_id] = self._restarts.get(beat.node_id, 0) + 1
        return restarted

    def heard_from(self) -> set[str]:
        """Every peer that ever sent a heartbeat."""
        return set(self._last)

    def seen(self, peers: list[str], now: float) -> tuple[PeerSeen, ...]:
        """One row per peer in `peers` and per peer ever heard, sorted by id."""
        rows = []
        for peer in sorted(set(peers) | set(self._last)):
            last = self._last.get(peer)
            age = None if last is None else max(0.0, now - last)
            rows.append(PeerSeen(
                peer=peer,
                alive=age is not None and age <= SUSPECT_AFTER_BEATS * self.interval,
                last_heard=age,
                restarts=self._restarts.get(peer, 0),
            ))
        return tuple(rows)

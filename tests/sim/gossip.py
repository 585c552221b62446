"""A toy sans-I/O node for the simulator's tests: it gossips a counter and persists what it hears.

On every tick it bumps its counter, persists `("sent", n)` and tells every
peer; on every message it persists `("heard", src, n)` and reports the same
as an event. It remembers everything it saw (local times, arrivals, durable
records at start), so tests can read what the simulator did to it.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from keel import wire
from keel.sim import NodeFactory, Output


@wire.message("test.sim.gossip")
@attrs.frozen
class Gossip:
    sender: str
    seq: int


class GossipNode:
    def __init__(self, node_id: str, durable: tuple[Any, ...], rng: random.Random, *, peers: Sequence[str],
                 persist: bool = True, make: Callable[[str, int], Any] = Gossip) -> None:
        self.node_id = node_id
        self.peers = tuple(sorted(p for p in peers if p != node_id))
        self.recovered = durable
        self.rng = rng
        self.persist = persist
        self.make = make
        self.seq = max((r[1] for r in durable if r[0] == "sent"), default=0)
        self.nows: list[float] = []
        self.heard: list[tuple[str, int]] = []
        self._out = Output()

    def tick(self, now: float) -> None:
        self.nows.append(now)
        self.seq += 1
        sends = tuple((peer, self.make(self.node_id, self.seq)) for peer in self.peers)
        persist = (("sent", self.seq),) if self.persist else ()
        self._out = attrs.evolve(self._out, persist=self._out.persist + persist, send=self._out.send + sends)

    def receive(self, src: str, message: Any) -> None:
        seq = message.seq if isinstance(message, Gossip) else message[1]
        self.heard.append((src, seq))
        fact = ("heard", src, seq)
        persist = (fact,) if self.persist else ()
        self._out = attrs.evolve(self._out, persist=self._out.persist + persist, events=self._out.events + (fact,))

    def poke(self, note: str) -> None:
        """An input from outside the network, as a test or client would give."""
        self._out = attrs.evolve(self._out, events=self._out.events + (("poked", note),))

    def poll(self) -> Output:
        out, self._out = self._out, Output()
        return out


def cluster(ids: Sequence[str] = ("a", "b", "c"), **options: Any) -> dict[str, NodeFactory]:
    """Factories for a gossip cluster of `ids`; `options` go to every `GossipNode`."""
    return dict.fromkeys(ids, functools.partial(GossipNode, peers=tuple(ids), **options))

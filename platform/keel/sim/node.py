"""What the simulator drives: sans-I/O nodes and the factory that (re)builds them.

A node is a plain object with three verbs. The simulator calls `tick(now)`
every `tick_interval` seconds of the node's own (possibly skewed) clock and
`receive(src, message)` for each message the virtual network delivers; after
every call, and once right after the node is built, it calls `poll()` and
carries out the returned record in this order:

1. `persist`: the records are appended to the node's simulated disk and an
   fsync starts; they become durable when it completes.
2. `send`: each `(dst, message)` leaves only once every record written so far
   (by this poll and every earlier one) is durable. Until then the sends are
   held, in order; a crash drops them. `send_early` (optional) leaves once
   what *earlier* polls wrote is durable, before this poll's `send`.
3. `events`: what the node wants checkers to see (a committed entry, a role
   change, a client's invoke/ok/fail/info). They go into the trace at once
   and to every observer; they never leave the node over the network.

A node never sees a crash: the simulator drops the object and, on restart,
calls the factory again with what survived on the disk. So everything a node
must remember across a crash goes through `persist`, and everything it
decides must be derived from its inputs, its durable records and the
`random.Random` it is given, never from wall-clock time, global randomness or
set/dict iteration order.

Clients are nodes too: an actor that issues operations on `tick` and reports
`events` (invoke, then ok/fail/info) is driven exactly like a server, so a
linearizability checker reads client histories from the same event stream.
"""

from __future__ import annotations

import random
from typing import Any, Protocol

import attrs

__all__ = ["Node", "NodeFactory", "Output", "Polled"]


@attrs.frozen
class Output:
    """What a node asks of its driver after an input; see the module doc for the order."""

    persist: tuple[Any, ...] = attrs.field(default=(), converter=tuple)  # appended to disk; durable before any `send` leaves
    send: tuple[tuple[str, Any], ...] = attrs.field(default=(), converter=tuple)  # (dst node id, message), sent in order
    # Like `send`, but waiting only for what earlier polls persisted, not this one's; sent before `send`.
    send_early: tuple[tuple[str, Any], ...] = attrs.field(default=(), converter=tuple)
    events: tuple[Any, ...] = attrs.field(default=(), converter=tuple)  # for checkers and the trace; never sent


class Polled(Protocol):
    """Anything `poll()` may return: an `Output`, or an engine's own record with these fields."""

    @property
    def persist(self) -> tuple[Any, ...]: ...

    @property
    def send(self) -> tuple[tuple[str, Any], ...]: ...

    @property
    def events(self) -> tuple[Any, ...]: ...


class Node(Protocol):
    """A sans-I/O node: inputs are method calls, output is polled."""

    def tick(self, now: float) -> None:
        """Time has advanced to `now` on this node's clock (seconds, never decreasing)."""

    def receive(self, src: str, message: Any) -> None:
        """`message` arrived from node `src`."""

    def poll(self) -> Polled:
        """Return, and forget, everything asked for since the last poll."""


class NodeFactory(Protocol):
    """Builds a node at start and again at every restart.

    Args:
        node_id: the node's name in the simulation.
        durable: every record the node persisted that was durable when it
            crashed, in the order written; empty on the first start.
        rng: the node's only source of randomness, seeded from the
            simulation's seed, the node id and the incarnation.
    """

    def __call__(self, node_id: str, durable: tuple[Any, ...], rng: random.Random) -> Node: ...

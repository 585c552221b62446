"""Which node a client asks next: the leader when it is known, else each endpoint in turn.

Plain data, no I/O, so the blocking `Client` keeps what it learned (the
leader, the node ids) across calls. The rules:

- a request that needs the leader goes to the believed leader; without
  one, the endpoints take turns;
- a `NotLeader` hint names a node id: with its address known, that node
  becomes the believed leader; an unknown id is learned by asking the
  endpoints who they are (`CoreStatus`, done by the caller);
- a failed endpoint (no connection, no answer) is believed leader no more,
  and the turn moves past it, so a dead node is not asked twice in a row.
"""

from __future__ import annotations

import attrs

from keel.address import Address
from keel.client.endpoints import Endpoint

__all__ = ["Routing"]


@attrs.define
class Routing:
    """What a client believes about the core's nodes."""

    endpoints: tuple[Endpoint, ...]
    leader: Address | None = None
    _turn: int = 0
    _ids: dict[str, Address] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if not self.endpoints:
            raise ValueError("routing needs at least one endpoint")
        self._ids = {e.node_id: e.address for e in self.endpoints if e.node_id is not None}

    def target(self) -> Address:
        """Where the next request goes."""
        if self.leader is not None:
            return self.leader
        return self.endpoints[self._turn % len(self.endpoints)].address

    def knows(self, node_id: str) -> bool:
        return node_id in self._ids

    def unnamed(self) -> tuple[Address, ...]:
        """The endpoints whose node id is not known yet."""
        named = set(self._ids.values())
        return tuple(e.address for e in self.endpoints if e.address not in named)

    def learn(self, node_id: str, address: Address) -> None:
        """`address` answered as node `node_id`."""
        self._ids[node_id] = address

    def redirect(self, src: Address, hint: str | None) -> bool:
        """`src` answered `NotLeader(hint)`; True if the hint names another endpoint to ask at once."""
        hinted = self._ids.get(hint) if hint is not None else None
        if hinted is None or hinted == src:
            self.failed(src)
            return False
        self.leader = hinted
        return True

    def failed(self, address: Address) -> None:
        """`address` could not serve the request: stop believing it leads and move the turn past it."""
        if self.leader == address:
            self.leader = None
        addresses = [e.address for e in self.endpoints]
        if address in addresses:
            self._turn = addresses.index(address) + 1

    def led_by(self, address: Address) -> None:
        """`address` served a request only the leader serves."""
        self.leader = address

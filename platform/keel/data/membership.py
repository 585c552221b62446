"""What a data node registers in the core: its addresses and the stores it has.

The registration is the value of `keel/data/members/<node id>`, attached to
the node's lease (`keel.core.api.RegisterMember`): it is there exactly while
the node keeps its lease alive. The controller places partitions on the
registered nodes; clients and other data nodes read the addresses there.
"""

from __future__ import annotations

import attrs

from keel import wire
from keel.address import Address
from keel.errors import KeelError, WireError

__all__ = ["MemberInfo"]


@attrs.frozen
class MemberInfo:
    """One data node's registration."""

    peer: Address  # where other data nodes reach it
    client: Address  # where clients send data calls
    stores: tuple[str, ...] = ()  # the store plugins it has

    def to_bytes(self) -> bytes:
        return wire.encode_plain({"peer": str(self.peer), "client": str(self.client), "stores": list(self.stores)})

    @classmethod
    def from_bytes(cls, data: bytes) -> MemberInfo:
        """The registration `to_bytes` gave.

        Raises:
            KeelError: not a registration (the message says why).
        """
        try:
            raw = wire.decode_plain(data, "member registration")
        except WireError as exc:
            raise KeelError(str(exc)) from None
        if not (isinstance(raw, dict) and isinstance(raw.get("peer"), str) and isinstance(raw.get("client"), str)
                and isinstance(raw.get("stores", []), list) and all(isinstance(s, str) for s in raw.get("stores", []))):
            raise KeelError("member registration: expected peer and client addresses and a list of stores")
        try:
            return cls(Address.parse(raw["peer"]), Address.parse(raw["client"]), tuple(raw.get("stores", [])))
        except ValueError as exc:
            raise KeelError(f"member registration: {exc}") from None

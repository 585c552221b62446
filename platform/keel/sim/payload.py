"""Messages and records as the simulator carries them: through the wire codec when registered.

A value whose class is a registered wire message is encoded when it leaves a
node (sent, or written to disk) and decoded again where it arrives (each
delivered copy, each restart), exactly as the TCP transport and the durable
log will. So a message that cannot travel fails in the simulation, at the
send that produced it, and no two nodes ever share one mutable object.

Other values (tuples, strings, unregistered attrs classes) are passed by
reference, so small toy nodes need no wire registration; they must treat
what they send and persist as immutable. A simulation built with
`wire_only=True` refuses them, which is what engine and client tests want.
"""

from __future__ import annotations

from typing import Any

import attrs

from keel import wire

__all__ = ["Payload"]


def _registered(value: Any) -> bool:
    try:
        wire.tag_of(type(value))
    except KeyError:
        return False
    return True


@attrs.frozen
class Payload:
    """One message or record in transit or at rest."""

    value: Any  # what the node handed over; the trace shows this
    encoded: bytes | None  # canonical CBOR when `value` is a registered message

    @classmethod
    def of(cls, value: Any, *, wire_only: bool) -> Payload:
        """Seal `value`, encoding it if its class is a registered wire message.

        Raises:
            TypeError: `value` is a registered message that does not survive
                encoding and decoding, or `wire_only` is set and it is not a
                registered message.
        """
        if _registered(value):
            # Decoding once here blames the send that built a bad message,
            # not a delivery that may come much later or never.
            try:
                encoded = wire.encode(value)
                wire.decode(encoded)
            except Exception as exc:  # noqa: BLE001 - the codec's and cbor2's errors alike
                raise TypeError(f"{wire.tag_of(type(value))}: {value!r} cannot travel: {exc}") from exc
            return cls(value=value, encoded=encoded)
        if wire_only:
            raise TypeError(f"{type(value).__qualname__} is not a registered wire message (the simulation is wire_only)")
        return cls(value=value, encoded=None)

    def open(self) -> Any:
        """A fresh copy for the receiver: decoded anew when it was encoded."""
        return self.value if self.encoded is None else wire.decode(self.encoded)

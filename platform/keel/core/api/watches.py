"""Watches: long polls for the changes from a revision on.

Part of the core's client protocol; see `keel.core.api`.
"""

from __future__ import annotations

import attrs

from keel.core.api.keys import Event
from keel.wire import message

__all__ = ["Watch", "WatchReply"]


# --- watches ---------------------------------------------------------------------------


@message("core.watch")
@attrs.frozen
class Watch:
    """Long poll: the events on `key` (or under it, with `prefix`) from `start_revision` on.

    The node answers as soon as there is at least one, or with none after
    `wait` seconds; the client asks again from `next_revision`, so it sees
    every event once, in order, whichever node it asks.
    """

    key: bytes
    prefix: bool = False
    start_revision: int = 0  # 0: from the next change
    wait: float = 1.0  # seconds the node may hold the request


@message("core.watch_reply")
@attrs.frozen
class WatchReply:
    events: tuple[Event, ...]
    next_revision: int  # where the next poll starts
    revision: int  # the keyspace revision the node has applied

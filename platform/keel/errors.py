"""The errors keel raises on purpose.

A class exists only where some caller must handle it differently. Blame goes
in the type: `ConfigError` and `WireError` mean someone else's input was wrong;
a `ValueError` or `TypeError` out of keel code means a caller inside keel is.
Every message is one line: *where: what was given: the rule*.
"""

from __future__ import annotations

__all__ = [
    "Compacted",
    "ConfigError",
    "KeelError",
    "LeaseExpired",
    "NotLeader",
    "PluginError",
    "ReservedKey",
    "TooFewReplicas",
    "UnknownBucket",
    "UnsupportedOperation",
    "SessionExpired",
    "StorageError",
    "Unavailable",
    "WireError",
]


class KeelError(Exception):
    """Everything keel raises on purpose; the CLI prints it as one line."""


class ConfigError(KeelError):
    """Operator input (config file, CLI argument) broke a rule.

    `path` is the dotted field path (`core.peers[2]`), empty when the mistake
    is not about one field (an unreadable file, say).
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.detail = message
        super().__init__(f"{path}: {message}" if path else message)


class WireError(KeelError):
    """Bytes from a peer could not be decoded; drop that link only."""


class PluginError(KeelError):
    """A plugin is missing, registered twice, or built for another contract."""


class NotLeader(KeelError):
    """This node does not lead; `leader_hint` names the node that may."""

    def __init__(self, leader_hint: str | None) -> None:
        self.leader_hint = leader_hint
        hint = leader_hint if leader_hint is not None else "unknown"
        super().__init__(f"not the leader; leader hint: {hint}")


class Unavailable(KeelError):
    """A peer or a quorum could not be reached before the deadline."""


class StorageError(KeelError):
    """Durable state is unreadable or corrupt; the node refuses to serve it."""


class Compacted(KeelError):
    """The revision asked for was compacted away; a watcher must read the current state and go on from there."""


class LeaseExpired(KeelError):
    """The lease expired or was revoked; whatever it protected is gone."""


class TooFewReplicas(Unavailable):
    """Fewer replicas of a key's partition answered in time than the request needed; the message says how many.

    For a write, the replicas that did acknowledge keep it, and repair
    brings it to the rest: it may take effect although the call failed.
    """


class UnknownBucket(KeelError):
    """The request names a bucket the cluster's bucket table does not hold."""


class UnsupportedOperation(KeelError):
    """The bucket's store has no such operation, or its arguments are wrong."""


class ReservedKey(KeelError):
    """A client asked to write or delete a key under the prefix only keel itself writes."""


class SessionExpired(KeelError):
    """The node no longer remembers this client's session (or this request's answer).

    A request refused so was not applied now; whether an earlier attempt of
    it was, only the client knows. A client starts a new session.
    """

"""The small replicated key-value machine the consensus conformance suite runs.

Clients send `KvRequest`s to server nodes; a write, cas or delete is
proposed as the encoded `KvCommand` and answered once applied, with the
machine's result; a read passes the engine's read barrier and is answered
from the machine once it has applied up to the barrier's index. Values are
integers; every key starts absent, which is the register model the
linearizability checker uses.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs
import cbor2

from keel import wire
from keel.consensus import Entry, EntryKind

__all__ = ["ChangeReply", "ChangeRequest", "KvCommand", "KvMachine", "KvReply", "KvRequest"]


@wire.message("conformance.kv.command")
@attrs.frozen
class KvCommand:
    """A state-changing operation, as it travels in the log.

    `client` and `seq` make every command's bytes unique, so a server can
    tell whether the entry committed at the index it was given is its own.
    """

    client: str
    seq: int
    f: str  # "write", "cas" or "delete"
    key: str
    value: int | None = None  # write: the value; cas: the new value
    expected: int | None = None  # cas: the value it must find


@wire.message("conformance.kv.request")
@attrs.frozen
class KvRequest:
    """A client's operation, sent to a server node."""

    client: str
    seq: int
    f: str  # "read", "write", "cas" or "delete"
    key: str
    value: int | None = None
    expected: int | None = None

    def command(self) -> KvCommand:
        return KvCommand(self.client, self.seq, self.f, self.key, self.value, self.expected)


@wire.message("conformance.kv.reply")
@attrs.frozen
class KvReply:
    """A server's answer. `outcome` is "ok", "fail" (certainly not applied) or "redirect"."""

    seq: int
    outcome: str
    value: int | None = None  # read: the value found (None: absent)
    leader_hint: str | None = None  # redirect: where to try next


@wire.message("conformance.kv.change")
@attrs.frozen
class ChangeRequest:
    """An operator's one-server membership change, sent to a server node."""

    seq: int
    action: str  # a `keel.consensus.MembershipChange` action
    node: str


@wire.message("conformance.kv.change_reply")
@attrs.frozen
class ChangeReply:
    """A server's answer to a `ChangeRequest`, with the configuration it holds now.

    `outcome` is "ok" (the change is in the log), "fail" (refused) or
    "redirect". The configuration is the latest the server knows, which
    may not be committed yet.
    """

    seq: int
    outcome: str
    voters: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    learners: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    leader_hint: str | None = None


class KvMachine:
    """Integer registers by key, applied from `KvCommand` entries.

    `digest` chains every applied index and command, so two machines with
    equal digests at one index applied the same history up to it.
    """

    def __init__(self) -> None:
        self.index = 0
        self.digest = b""
        self.data: dict[str, int] = {}
        # The last command applied per client, with its result: a duplicate
        # (the network delivered a request twice, or a client retried at
        # another server) is answered from here instead of applied again.
        self.sessions: dict[str, tuple[int, Any]] = {}

    def apply(self, entry: Entry) -> Any:
        """Apply one committed entry; return the command's result (cas: whether it took)."""
        self.index = entry.index
        if entry.kind is not EntryKind.COMMAND:
            return None
        self.digest = hashlib.sha256(self.digest + entry.index.to_bytes(8, "big") + entry.data).digest()
        command = wire.decode(entry.data)
        if not isinstance(command, KvCommand):
            return None
        seen = self.sessions.get(command.client)
        if seen is not None and command.seq <= seen[0]:
            return seen[1] if command.seq == seen[0] else None
        result = self._execute(command)
        self.sessions[command.client] = (command.seq, result)
        return result

    def _execute(self, command: KvCommand) -> Any:
        if command.f == "write":
            self.data[command.key] = command.value  # type: ignore[assignment]
            return True
        if command.f == "delete":
            self.data.pop(command.key, None)
            return True
        if command.f == "cas":
            if self.data.get(command.key) != command.expected:
                return False
            self.data[command.key] = command.value  # type: ignore[assignment]
            return True
        return None

    def read(self, key: str) -> int | None:
        return self.data.get(key)

    def snapshot(self) -> bytes:
        sessions = {client: list(seen) for client, seen in self.sessions.items()}
        return cbor2.dumps({"index": self.index, "digest": self.digest, "data": self.data, "sessions": sessions},
                           canonical=True)

    def restore(self, blob: bytes) -> None:
        state = cbor2.loads(blob)
        self.index, self.digest, self.data = state["index"], state["digest"], dict(state["data"])
        self.sessions = {client: (seen[0], seen[1]) for client, seen in state["sessions"].items()}

"""Messages every transport may use to carry client requests and errors.

A transport that multiplexes requests over one connection wraps each in a
`Request` with an id the client picked and answers with a `Response` of the
same id. A handler's `KeelError` travels as an `ErrorReply` and is raised
again on the client with the same type, so `NotLeader` keeps its hint
across the wire.
"""

from __future__ import annotations

from typing import Any

import attrs

from keel import errors
from keel.wire import AnyMessage, message

__all__ = ["ErrorReply", "Request", "Response", "error_reply", "raise_if_error"]


@message("keel.request")
@attrs.frozen
class Request:
    id: int
    body: AnyMessage


@message("keel.response")
@attrs.frozen
class Response:
    id: int
    body: AnyMessage


# Error kinds that cross the wire; anything else arrives as KeelError.
_KINDS: dict[str, type[errors.KeelError]] = {
    "config": errors.ConfigError,
    "wire": errors.WireError,
    "plugin": errors.PluginError,
    "not_leader": errors.NotLeader,
    "unavailable": errors.Unavailable,
    "storage": errors.StorageError,
    "compacted": errors.Compacted,
    "lease_expired": errors.LeaseExpired,
    "session_expired": errors.SessionExpired,
    "reserved_key": errors.ReservedKey,
    "too_few_replicas": errors.TooFewReplicas,
    "unknown_bucket": errors.UnknownBucket,
    "unsupported_operation": errors.UnsupportedOperation,
    "error": errors.KeelError,
}


@message("keel.error")
@attrs.frozen
class ErrorReply:
    """A request failed on the node; `kind` names the error type."""

    kind: str
    message: str
    leader_hint: str | None = None


def error_reply(exc: BaseException) -> ErrorReply:
    """The reply that tells a client about `exc`; non-keel errors stay vague."""
    if isinstance(exc, errors.NotLeader):
        return ErrorReply("not_leader", str(exc), exc.leader_hint)
    if isinstance(exc, errors.KeelError):
        kind = next((k for k, cls in _KINDS.items() if type(exc) is cls), "error")
        return ErrorReply(kind, str(exc))
    return ErrorReply("error", f"internal error in the node ({type(exc).__name__}); see its log")


def raise_if_error(reply: Any) -> Any:
    """Return `reply`, or raise the typed error it carries."""
    if not isinstance(reply, ErrorReply):
        return reply
    if reply.kind == "not_leader":
        raise errors.NotLeader(reply.leader_hint)
    if reply.kind == "config":
        raise errors.ConfigError("", reply.message)
    raise _KINDS.get(reply.kind, errors.KeelError)(reply.message)

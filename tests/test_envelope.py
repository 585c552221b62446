"""Errors across the wire: a handler's KeelError reaches the client with its type.

Also the one-line messages of `keel.errors` that a client sees again after the
trip.
"""

from __future__ import annotations

import pytest

from keel import errors, wire
from keel.transport.envelope import ErrorReply, Request, Response, error_reply, raise_if_error


def across_the_wire(exc: BaseException) -> ErrorReply:
    """The reply a node sends for `exc`, as its client decodes it."""
    (reply,) = wire.FrameDecoder().feed(wire.encode_frame(Response(id=9, body=error_reply(exc))))
    assert reply.id == 9
    return reply.body


@pytest.mark.parametrize(
    "exc",
    [
        errors.WireError("peer n2: frame: length 0"),
        errors.PluginError("plugin 'x' is installed twice"),
        errors.Unavailable("quorum unreachable within 2 s"),
        errors.StorageError("wal segment 7: checksum mismatch"),
        errors.KeelError("something keel meant"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_a_keel_error_keeps_its_type_and_message(exc: errors.KeelError) -> None:
    with pytest.raises(type(exc)) as caught:
        raise_if_error(across_the_wire(exc))
    assert type(caught.value) is type(exc)
    assert str(caught.value) == str(exc)


def test_a_config_error_keeps_its_type_and_message() -> None:
    exc = errors.ConfigError("raft.election_timeout", "0.1 is below 3 × raft.heartbeat (0.15)")
    with pytest.raises(errors.ConfigError) as caught:
        raise_if_error(across_the_wire(exc))
    assert str(caught.value) == "raft.election_timeout: 0.1 is below 3 × raft.heartbeat (0.15)"


@pytest.mark.parametrize("hint", ["n3", None])
def test_not_leader_keeps_its_leader_hint(hint: str | None) -> None:
    with pytest.raises(errors.NotLeader) as caught:
        raise_if_error(across_the_wire(errors.NotLeader(hint)))
    assert caught.value.leader_hint == hint
    assert str(caught.value) == str(errors.NotLeader(hint))


def test_a_subclass_of_not_leader_still_carries_its_hint() -> None:
    class Demoted(errors.NotLeader):
        pass

    with pytest.raises(errors.NotLeader) as caught:
        raise_if_error(across_the_wire(Demoted("n2")))
    assert caught.value.leader_hint == "n2"


def test_a_keel_error_of_an_unlisted_subclass_arrives_as_keel_error() -> None:
    class Throttled(errors.Unavailable):
        pass

    with pytest.raises(errors.KeelError) as caught:
        raise_if_error(across_the_wire(Throttled("slow down")))
    assert type(caught.value) is errors.KeelError
    assert str(caught.value) == "slow down"


def test_a_non_keel_exception_gives_a_vague_internal_error() -> None:
    reply = across_the_wire(KeyError("/srv/keel/secret-path"))
    assert reply == ErrorReply("error", "internal error in the node (KeyError); see its log")
    with pytest.raises(errors.KeelError, match=r"^internal error in the node \(KeyError\); see its log$") as caught:
        raise_if_error(reply)
    assert type(caught.value) is errors.KeelError


def test_an_unknown_error_kind_from_a_newer_peer_arrives_as_keel_error() -> None:
    with pytest.raises(errors.KeelError, match="^quota exceeded$") as caught:
        raise_if_error(ErrorReply("quota", "quota exceeded"))
    assert type(caught.value) is errors.KeelError


def test_a_reply_that_is_not_an_error_is_returned_unchanged() -> None:
    reply = Response(id=1, body=ErrorReply("x", "y"))
    assert raise_if_error(reply) is reply


def test_a_request_carries_any_registered_message() -> None:
    request = Request(id=2**63, body=Request(id=0, body=ErrorReply("wire", "inner")))
    assert wire.decode(wire.encode(request)) == request


def test_not_leader_names_its_hint_or_says_unknown() -> None:
    assert str(errors.NotLeader("n3")) == "not the leader; leader hint: n3"
    assert str(errors.NotLeader(None)) == "not the leader; leader hint: unknown"


def test_config_error_prefixes_its_field_path() -> None:
    assert str(errors.ConfigError("core.peers[2]", '"x" is not host:port')) == 'core.peers[2]: "x" is not host:port'
    assert str(errors.ConfigError("", "keel.toml: no such file")) == "keel.toml: no such file"
    assert errors.ConfigError("core.peers[2]", "bad").path == "core.peers[2]"


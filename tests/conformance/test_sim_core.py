"""The simulated core caller: redirects, retries with the same session seq, deadlines."""

from __future__ import annotations

import random
from typing import Any

from keel.conformance.sim_core import ATTEMPT_S, REDIRECT_BACKOFF_S, Caller
from keel.core.api import Call, Put, PutReply
from keel.transport import ErrorReply, Request, Response

SERVERS = ("n1", "n2", "n3")
BODY = Call("c1", 1, 0, Put(b"k", b"v"))


def started(timeout: float = 1.0) -> tuple[Caller, list[Any], str, Request]:
    caller = Caller("c1", random.Random(1), SERVERS)
    outcomes: list[Any] = []
    caller.call(BODY, timeout=timeout, on_done=lambda reply, maybe: outcomes.append((reply, maybe)))
    (target, request), = caller.take_sends()
    return caller, outcomes, target, request


def other_than(server: str) -> str:
    return next(s for s in SERVERS if s != server)


def test_a_hinted_redirect_resends_the_same_call_to_the_hint():
    caller, _, target, request = started()
    hint = other_than(target)
    caller.receive(target, Response(request.id, ErrorReply("not_leader", "no", hint)))
    (dst, again), = caller.take_sends()
    assert dst == hint and again.body == BODY and again.id != request.id


def test_a_duplicated_redirect_is_followed_once():
    """The network may deliver a redirect twice; following both would double the requests at every hop."""
    caller, _, target, request = started()
    redirect = Response(request.id, ErrorReply("not_leader", "no", other_than(target)))
    caller.receive(target, redirect)
    caller.receive(target, redirect)
    assert len(caller.take_sends()) == 1


def test_a_redirect_without_a_leader_waits_before_retrying():
    caller, _, target, request = started()
    caller.receive(target, Response(request.id, ErrorReply("not_leader", "no", None)))
    assert caller.take_sends() == []
    caller.tick(REDIRECT_BACKOFF_S / 2)
    assert caller.take_sends() == []
    caller.tick(REDIRECT_BACKOFF_S)
    (dst, again), = caller.take_sends()
    assert dst != target and again.body == BODY


def test_an_unanswered_attempt_is_retried_elsewhere_with_the_same_call():
    caller, outcomes, target, request = started()
    caller.tick(ATTEMPT_S)
    (dst, again), = caller.take_sends()
    assert dst != target and again.body == BODY  # same client and seq: the session applies it once
    caller.receive(target, Response(request.id, PutReply(7)))  # the first attempt's answer, late, still counts
    assert outcomes == [(PutReply(7), True)]


def test_the_deadline_ends_the_request_as_maybe_applied():
    caller, outcomes, _, _ = started(timeout=0.5)
    caller.tick(0.5)
    assert outcomes == [(None, True)] and caller.idle


def test_an_answer_to_another_request_is_ignored():
    caller, outcomes, target, request = started()
    assert not caller.receive(target, Response(request.id + 100, PutReply(1)))
    assert outcomes == []

"""The simulated conformance client: redirects, deadlines, and what it reports."""

from __future__ import annotations

import random

from keel.conformance.kv import KvReply
from keel.conformance.kv_client import REDIRECT_BACKOFF_S, KvClient, OpCompleted, OpInvoked

SERVERS = ("n1", "n2", "n3")


def started_client() -> tuple[KvClient, tuple[str, object]]:
    client = KvClient("c1", random.Random(1), number=1, servers=SERVERS, keys=("k",), timeout=1.0,
                      think=(0.0, 0.0), stop_at=100.0)
    client.tick(0.0)
    out = client.poll()
    assert [type(e) for e in out.events] == [OpInvoked]
    (sent,) = out.send
    return client, sent


def test_a_hinted_redirect_resends_the_same_request_to_the_hint():
    client, (target, request) = started_client()
    hint = next(s for s in SERVERS if s != target)
    client.receive(target, KvReply(request.seq, "redirect", leader_hint=hint))
    assert client.poll().send == ((hint, request),)


def test_a_duplicated_redirect_is_followed_once():
    """The network may deliver a redirect twice; following both would double the requests at every hop."""
    client, (target, request) = started_client()
    hint = next(s for s in SERVERS if s != target)
    redirect = KvReply(request.seq, "redirect", leader_hint=hint)
    client.receive(target, redirect)
    client.receive(target, redirect)
    assert len(client.poll().send) == 1


def test_a_redirect_without_a_leader_waits_before_retrying():
    client, (target, request) = started_client()
    client.receive(target, KvReply(request.seq, "redirect", leader_hint=None))
    assert client.poll().send == ()
    client.tick(REDIRECT_BACKOFF_S / 2)
    assert client.poll().send == ()
    client.tick(REDIRECT_BACKOFF_S)
    (retry,) = client.poll().send
    assert retry[0] != target and retry[1] == request


def test_an_unanswered_operation_is_reported_indeterminate_at_its_deadline():
    client, _ = started_client()
    client.tick(1.0)
    (done, *_), = [client.poll().events]
    assert done == OpCompleted("c1", 1, "info")


def test_a_late_answer_to_an_abandoned_operation_is_ignored():
    client, (target, request) = started_client()
    client.tick(1.0)
    client.poll()
    client.receive(target, KvReply(request.seq, "ok"))
    assert not any(isinstance(e, OpCompleted) and e.seq == request.seq for e in client.poll().events)

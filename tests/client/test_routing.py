"""Where the next request goes: the believed leader, hints, the endpoints in turn."""

from __future__ import annotations

from keel.address import Address
from keel.client.endpoints import Endpoint
from keel.client.routing import Routing

A, B, C = (Address("127.0.0.1", port) for port in (7001, 7002, 7003))


def test_without_a_leader_the_endpoints_take_turns_past_failures() -> None:
    routing = Routing((Endpoint(A), Endpoint(B), Endpoint(C)))
    assert routing.target() == A
    routing.failed(A)
    assert routing.target() == B
    routing.failed(C)
    assert routing.target() == A


def test_a_hint_naming_a_known_node_makes_it_the_leader() -> None:
    routing = Routing((Endpoint(A, "c1"), Endpoint(B, "c2"), Endpoint(C, "c3")))
    assert routing.redirect(A, "c3")
    assert routing.target() == C


def test_a_hint_naming_an_unknown_or_the_same_node_moves_on() -> None:
    routing = Routing((Endpoint(A), Endpoint(B)))
    assert routing.unnamed() == (A, B)
    assert not routing.redirect(A, "c9")
    assert routing.target() == B
    routing.learn("c1", A)
    assert routing.unnamed() == (B,)
    assert not routing.redirect(A, "c1")  # "not me, but me": no use asking again at once
    assert routing.redirect(B, "c1")
    assert routing.target() == A


def test_a_failed_leader_is_believed_no_more() -> None:
    routing = Routing((Endpoint(A), Endpoint(B)))
    routing.led_by(A)
    routing.failed(A)
    assert routing.leader is None
    assert routing.target() == B

"""The simulated operator: it moves membership through its goals one change at a time."""

from __future__ import annotations

import random

from keel.conformance.kv import ChangeReply
from keel.conformance.kv_admin import ChangeMade, Operator


def operator(goals) -> Operator:
    return Operator("admin", random.Random(0), servers=("n1", "n2", "n3", "n4"), voters=("n1", "n2", "n3"),
                    goals=goals, step=0.3, start_at=0.0, stop_at=10.0)


def ask(op: Operator, now: float):
    op.tick(now)
    sent = op.poll().send
    return sent[0] if sent else None


def test_a_new_voter_joins_as_a_learner_then_is_promoted():
    op = operator((("voter", "n4"),))
    dst, request = ask(op, 0.0)
    assert (request.action, request.node) == ("add_learner", "n4")
    op.receive(dst, ChangeReply(request.seq, "ok", voters=("n1", "n2", "n3"), learners=("n4",)))
    assert op.poll().events == (ChangeMade("add_learner", "n4"),)
    _, request = ask(op, 0.3)
    assert (request.action, request.node) == ("promote", "n4")


def test_a_refused_change_is_asked_again_at_the_next_step():
    op = operator((("voter", "n4"),))
    dst, first = ask(op, 0.0)
    op.receive(dst, ChangeReply(first.seq, "fail", voters=("n1", "n2", "n3")))
    assert ask(op, 0.1) is None  # not before its step
    _, again = ask(op, 0.3)
    assert (again.action, again.node, again.seq) == ("add_learner", "n4", first.seq + 1)


def test_a_redirect_sends_the_next_request_to_the_hint():
    op = operator((("out", "n2"),))
    dst, request = ask(op, 0.0)
    hint = next(s for s in ("n1", "n2", "n3") if s != dst)
    op.receive(dst, ChangeReply(request.seq, "redirect", leader_hint=hint))
    assert ask(op, 0.3)[0] == hint


def test_the_operator_is_done_once_every_goal_shows_in_the_configuration():
    op = operator((("out", "n3"),))
    dst, request = ask(op, 0.0)
    assert (request.action, request.node) == ("remove", "n3")
    op.receive(dst, ChangeReply(request.seq, "ok", voters=("n1", "n2")))
    assert ask(op, 0.3) is None

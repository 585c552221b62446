"""The simulated core clients: what they ask and what they report."""

from __future__ import annotations

import random

from keel.conformance.actors import ChangeMade, OpCompleted, OpInvoked, Operator, RegisterClient
from keel.core.api import Call, CoreStatus, CoreStatusReply, MembershipReply, Put, PutReply, Range, RangeReply, \
    KeyValue, Txn
from keel.transport import ErrorReply, Response

SERVERS = ("n1", "n2", "n3")


def client() -> RegisterClient:
    return RegisterClient("c1", random.Random(3), number=1, servers=SERVERS, keys=("k",), timeout=1.0,
                          think=(0.0, 0.0), stop_at=100.0)


def first_request(actor):
    actor.tick(0.0)
    out = actor.poll()
    (dst, request), = out.send
    return dst, request, out.events


def test_a_register_client_stamps_writes_with_a_growing_seq_and_reads_with_none():
    actor = client()
    seqs = []
    for step in range(12):
        dst, request, events = first_request(actor)
        call = request.body
        assert isinstance(call, Call) and call.client == "c1"
        op = call.op
        if isinstance(op, Range):
            assert call.seq == 0
            actor.receive(dst, Response(request.id, RangeReply(step, (), 0, False)))
        else:
            seqs.append(call.seq)
            actor.receive(dst, Response(request.id, PutReply(step) if isinstance(op, Put) else
                                        ErrorReply("error", "refused")))
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) > 2


def test_a_read_reports_the_value_it_saw():
    actor = client()
    while True:
        dst, request, events = first_request(actor)
        if isinstance(request.body.op, Range):
            break
        actor.receive(dst, Response(request.id, ErrorReply("error", "refused")))
    invoked = [e for e in events if isinstance(e, OpInvoked)][-1]
    actor.receive(dst, Response(request.id, RangeReply(5, (KeyValue(b"k", b"1000007", 1, 5, 2),), 1, False)))
    done = [e for e in actor.poll().events if isinstance(e, OpCompleted)]
    assert done == [OpCompleted("c1", invoked.op, "ok", 1000007)]


def test_a_cas_on_an_absent_key_compares_its_version_with_zero():
    actor = client()
    while True:
        dst, request, _ = first_request(actor)
        if isinstance(request.body.op, Txn):
            break
        actor.receive(dst, Response(request.id, ErrorReply("error", "refused")))
    (compare,) = request.body.op.compare
    assert (compare.target, compare.op, compare.number) == ("version", "==", 0)


def test_an_operator_asks_for_the_configuration_after_a_refusal():
    op = Operator("admin", random.Random(0), servers=SERVERS + ("n4",), voters=SERVERS, goals=(("voter", "n4"),),
                  step_s=0.3, start_at=0.0, stop_at=10.0)
    dst, request, _ = first_request(op)
    assert request.body.op.action == "add_learner"
    op.receive(dst, Response(request.id, ErrorReply("error", "already a member")))
    op.tick(0.3)
    (dst, status), = op.poll().send
    assert isinstance(status.body, CoreStatus)
    op.receive(dst, Response(status.id, CoreStatusReply(node_id=dst, consensus="raft", role="leader", leader=dst,
                                                        term=2, commit_index=5, applied_index=5, last_index=5,
                                                        revision=3, voters=SERVERS, learners=("n4",))))
    op.tick(0.6)
    (dst, request), = op.poll().send
    assert request.body.op.action == "promote"
    op.receive(dst, Response(request.id, MembershipReply(SERVERS + ("n4",))))
    assert op.poll().events == (ChangeMade("promote", "n4"),)
    op.tick(0.9)
    assert op.poll().send == ()  # every goal met

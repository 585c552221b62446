"""The state machine against etcd's invariants, over drawn command sequences.

Each test feeds commands as a leader would log them (`machines.commands`:
clients' requests, some retried, with acks and idle gaps, and lease
expiries) and checks a rule after every one: the revision moves by one
exactly when the keyspace changes, keys and leases agree, replies never
carry a key newer than their revision, the history replays to the
keyspace, a txn applies all its writes or none, a lock's token never goes
down, retries change nothing, and equal inputs give equal machines.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel.core.api import Delete, DeleteReply, KeyValue, LeaseGrant, Put, PutReply, RangeReply, Txn, TxnReply
from keel.core.machine import LOCK_PREFIX, CoreMachine
from keel.transport.envelope import ErrorReply

from .machines import close_txns, commands, entry, feed_all, live

RUNS = settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def kvs_of(reply: Any) -> list[KeyValue]:
    """Every KeyValue a reply carries, its own and its sub-replies'."""
    if isinstance(reply, PutReply):
        return [reply.prev] if reply.prev else []
    if isinstance(reply, (DeleteReply,)):
        return list(reply.prev)
    if isinstance(reply, RangeReply):
        return list(reply.kvs)
    if isinstance(reply, TxnReply):
        return [kv for inner in reply.replies for kv in kvs_of(inner)]
    return []


@given(batch=commands(max_size=30))
@RUNS
def test_the_revision_moves_by_one_exactly_when_the_keyspace_changes(batch):
    """etcd: one revision per request that changes something, none for one that does not."""
    machine = CoreMachine()
    for i, command in enumerate(batch, start=1):
        before, revision = live(machine), machine.store.revision
        machine.apply(entry(i, command))
        after = live(machine)
        assert machine.store.revision == revision + (before != after)
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        assert all(after[k].mod_revision == machine.store.revision for k in changed if k in after)


@given(batch=commands(max_size=30))
@RUNS
def test_every_key_is_consistent_with_its_lease_and_its_history(batch):
    """Per key: create ≤ mod ≤ revision, version ≥ 1, its lease exists and lists it; a lease lists only its keys."""
    machine = CoreMachine()
    for i, command in enumerate(batch, start=1):
        machine.apply(entry(i, command))
        keys = live(machine)
        for kv in keys.values():
            assert 0 < kv.create_revision <= kv.mod_revision <= machine.store.revision
            assert kv.version >= 1
            if kv.lease:
                assert kv.key in machine.leases.leases[kv.lease].keys
        for lease in machine.leases.leases.values():
            assert all(keys[k].lease == lease.id for k in lease.keys)


@given(batch=commands(max_size=30))
@RUNS
def test_a_reply_never_carries_a_key_newer_than_its_revision(batch):
    machine = CoreMachine()
    for reply in feed_all(machine, batch):
        revision = getattr(reply, "revision", None)
        for kv in kvs_of(reply):
            assert revision is not None and kv.mod_revision <= revision
        if isinstance(reply, TxnReply):
            for inner in reply.replies:
                assert inner.revision <= reply.revision


@given(batch=commands(max_size=30))
@RUNS
def test_the_history_replayed_from_the_start_gives_the_keyspace(batch):
    """A watcher from revision 1 that applies every event ends with the keys the machine holds."""
    machine = CoreMachine()
    feed_all(machine, batch)
    if machine.store.compacted:
        return
    replayed: dict[bytes, KeyValue] = {}
    for event in machine.events(b"", prefix=True, start=1):
        if event.kind == "put":
            replayed[event.kv.key] = event.kv
        else:
            del replayed[event.kv.key]
    assert replayed == live(machine)


@given(batch=commands(max_size=20, requests=st.one_of(close_txns, st.builds(LeaseGrant, st.just(5.0)))))
@RUNS
def test_a_txn_applies_all_its_writes_or_none(batch):
    """Checked on first deliveries only: a retry is answered from the session table, applying nothing."""
    machine = CoreMachine()
    sent: set[tuple[str, int]] = set()
    for i, command in enumerate(batch, start=1):
        before, revision = live(machine), machine.store.revision
        answer = machine.apply(entry(i, command))
        retry = (command.client, command.seq) in sent
        sent.add((command.client, command.seq))
        if not isinstance(command.op, Txn) or retry:
            continue
        after = live(machine)
        if isinstance(answer, ErrorReply):
            assert (after, machine.store.revision) == (before, revision)
            continue
        branch = command.op.success if answer.succeeded else command.op.failure
        for op in branch:
            if isinstance(op, Put):
                assert after[op.key].value == op.value and after[op.key].mod_revision == answer.revision
            elif isinstance(op, Delete):
                assert not any(k == op.key or (op.prefix and k.startswith(op.key)) for k in after)
        touched = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        written = {op.key for op in branch if isinstance(op, Put)}
        deleted = {k for op in branch if isinstance(op, Delete) for k in before
                   if k == op.key or (op.prefix and k.startswith(op.key))}
        assert touched == written | deleted


@given(batch=commands(max_size=40))
@RUNS
def test_a_locks_fencing_token_never_goes_down(batch):
    machine = CoreMachine()
    tokens: dict[bytes, int] = {}
    for i, command in enumerate(batch, start=1):
        machine.apply(entry(i, command))
        for name in (b"l", b"m"):
            holder = machine.first(LOCK_PREFIX + name + b"/")
            if holder is not None:
                assert holder.create_revision >= tokens.get(name, 0)
                tokens[name] = holder.create_revision


@given(batch=commands(max_size=30))
@RUNS
def test_two_machines_fed_the_same_commands_agree_on_answers_digest_and_snapshot(batch):
    one, two = CoreMachine(), CoreMachine()
    assert feed_all(one, batch) == feed_all(two, batch)
    assert one.digest == two.digest
    assert one.snapshot() == two.snapshot()


@given(batch=commands(max_size=30))
@RUNS
def test_applying_a_command_again_as_a_retry_changes_nothing(batch):
    """Every client command, delivered a second time right after, gets the same answer and leaves the state alone."""
    machine = CoreMachine()
    index = 0
    for command in batch:
        index += 1
        answer = machine.apply(entry(index, command))
        if not command.client or isinstance(answer, ErrorReply) and "session" in answer.message:
            continue
        state = (live(machine), machine.store.revision, machine.leases.dump())
        index += 1
        assert machine.apply(entry(index, command)) == answer
        assert (live(machine), machine.store.revision, machine.leases.dump()) == state

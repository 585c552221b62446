"""Snapshots of the core's state machine: one canonical wire message, restored whole or not at all.

Raft §7 (log compaction): a node that installs a snapshot must then be
the machine that applied the log up to it, so the round trip must give
equal state (equal snapshot bytes, equal reads, equal answers to whatever
comes next), including the session table, or a retry after a restart
would be applied twice (Raft thesis §6.3).
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings

from keel import wire
from keel.core.api import Compact, Leader, LeaseGrant, LeaseRevoke, Put, PutReply, Range
from keel.core.machine import Command, CoreMachine
from keel.core.sessions import SessionTable
from keel.core.snapshot import FORMAT
from keel.errors import Compacted, WireError

from .machines import KEY_POOL, Feed, commands, entry, feed_all, live

RUNS = settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
SUBPROCESS_DEADLINE_S = 120.0  # seconds; a cold interpreter on a loaded machine, far above the usual second


def restored(machine: CoreMachine) -> CoreMachine:
    copy = CoreMachine()
    copy.restore(machine.snapshot())
    return copy


def reads(machine: CoreMachine) -> list[object]:
    """Everything a client can read: every pool key alone and as a prefix, elections, and the watchable history."""
    out: list[object] = [machine.read(Range(key, prefix=prefix)) for key in KEY_POOL for prefix in (False, True)]
    out += [machine.read(Leader(name)) for name in (b"l", b"m")]
    out.append(machine.events(b"", prefix=True, start=machine.store.compacted + 1))
    out += [machine.index, machine.digest, machine.store.compacted, machine.leases.dump(), machine.sessions.dump()]
    return out


def sample() -> Feed:
    feed = Feed()
    feed.send(LeaseGrant(5.0))
    feed.send(Put(b"a", b"1", lease=1))
    feed.send(Put(b"b", b"1"), client="bob", at=7.0)
    return feed


def test_a_restored_machine_reads_the_same():
    feed = sample()
    copy = restored(feed.machine)
    assert reads(copy) == reads(feed.machine)
    assert copy.snapshot() == feed.machine.snapshot()


def test_a_retry_after_a_restore_gets_its_first_answer():
    """The session table travels in the snapshot, so a node restored from it still applies each request once."""
    feed = sample()
    copy = Feed(restored(feed.machine))
    assert copy.send(Put(b"a", b"other"), seq=2) == PutReply(1)
    assert live(copy.machine)[b"a"].value == b"1"


def test_a_restored_machine_deletes_a_leases_keys_on_revoke():
    copy = Feed(restored(sample().machine))
    copy.send(Put(b"x", b"1"), client="carol")
    copy.send(LeaseRevoke(1), client="carol")
    assert sorted(live(copy.machine)) == [b"b", b"x"]


def test_a_restored_machine_keeps_the_compaction_point():
    feed = sample()
    feed.send(Compact(2))
    copy = restored(feed.machine)
    assert copy.store.compacted == 2
    with pytest.raises(Compacted, match="the history before 2 was compacted"):
        copy.events(b"", prefix=True, start=1)
    assert [e.kv.mod_revision for e in copy.events(b"", prefix=True, start=2)][:1] == [2]


def test_a_restore_replaces_the_whole_state():
    full = sample()
    empty = CoreMachine()
    full.machine.restore(empty.snapshot())
    assert full.machine.snapshot() == empty.snapshot()
    assert (live(full.machine), len(full.machine.leases), len(full.machine.sessions)) == ({}, 0, 0)


def test_a_restore_keeps_the_machines_own_session_bounds():
    """Bounds are configuration, not state: they stay the restoring node's."""
    machine = CoreMachine()
    machine.sessions = SessionTable(max_sessions=3, window=4, idle_expiry=5.0)
    machine.restore(sample().machine.snapshot())
    table = machine.sessions
    assert (table.max_sessions, table.window, table.idle_expiry) == (3, 4, 5.0)
    assert len(table) == 2


@pytest.mark.parametrize("blob", [b"", b"\xff\xff", b"\x82\x63abc\xa0", wire.encode(Put(b"a", b"1"))[:-1]])
def test_a_damaged_snapshot_is_refused_and_leaves_the_machine_as_it_was(blob):
    feed = sample()
    before = feed.machine.snapshot()
    with pytest.raises(WireError):
        feed.machine.restore(blob)
    assert feed.machine.snapshot() == before


def test_a_message_that_is_not_a_snapshot_is_refused_naming_it():
    feed = sample()
    before = feed.machine.snapshot()
    with pytest.raises(WireError, match="^core snapshot: format 'core.put', this keel reads formats 2, 3$"):
        feed.machine.restore(wire.encode(Put(b"a", b"1")))
    assert feed.machine.snapshot() == before


@pytest.mark.parametrize(("position", "bad", "named"), [
    (3, "three", "revision"), (0, FORMAT + 1, "format"), (5, [["k"]], "keys"), (6, [[9, b"k", b"", 1, 1, 1, 0]], "kind"),
])
def test_a_snapshot_with_a_field_of_the_wrong_type_is_refused(position, bad, named):
    raw = cbor2.loads(sample().machine.snapshot())
    raw[position] = bad
    machine = CoreMachine()
    with pytest.raises(WireError, match=named):
        machine.restore(cbor2.dumps(raw, canonical=True))
    assert machine.snapshot() == CoreMachine().snapshot()


def test_a_snapshot_opens_with_its_format_and_the_machines_index_digest_and_revision():
    feed = sample()
    raw = cbor2.loads(feed.machine.snapshot())
    assert raw[:4] == [FORMAT, 3, feed.machine.digest, 2]


@given(batch=commands(max_size=30), after=commands(max_size=10))
@RUNS
def test_a_snapshot_round_trip_gives_an_equal_machine(batch, after):
    """Equal bytes, equal reads, and the same answers to whatever is applied next."""
    machine = CoreMachine()
    feed_all(machine, batch)
    copy = restored(machine)
    assert copy.snapshot() == machine.snapshot()
    assert reads(copy) == reads(machine)
    assert feed_all(copy, after) == feed_all(machine, after)
    assert copy.snapshot() == machine.snapshot()


@given(batch=commands(max_size=30))
@RUNS
def test_a_snapshot_taken_twice_is_the_same_bytes(batch):
    machine = CoreMachine()
    feed_all(machine, batch)
    assert machine.snapshot() == machine.snapshot() == restored(restored(machine)).snapshot()


# --- independence of the hash seed ---------------------------------------------------------------

_REPLAY = """
import sys, hashlib, cbor2
from keel.consensus import Entry, EntryKind
from keel.core.machine import CoreMachine
machine = CoreMachine()
for index, data in enumerate(cbor2.loads(sys.stdin.buffer.read()), start=1):
    machine.apply(Entry(index, 1, EntryKind.COMMAND, data))
print(hashlib.sha256(machine.snapshot()).hexdigest())
"""


def workload(rng: random.Random) -> list[bytes]:
    """Many keys attached to leases, many sessions with answers: where set and dict order could leak."""
    out = [wire.encode(Command("setup", i, 0, 0.0, LeaseGrant(60.0))) for i in (1, 2, 3)]
    seqs: dict[str, int] = {}
    for i in range(300):
        client = f"client-{rng.randrange(40)}"
        seqs[client] = seqs.get(client, 0) + 1
        key = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4)))
        put = Put(key, b"v", lease=rng.choice((0, 1, 2, 3)))
        out.append(wire.encode(Command(client, seqs[client], 0, float(i), put)))
    return out


def snapshot_hash(payloads: list[bytes], hash_seed: str) -> str:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    done = subprocess.run([sys.executable, "-c", _REPLAY], input=cbor2.dumps(payloads), env=env,
                          capture_output=True, check=True, timeout=SUBPROCESS_DEADLINE_S)
    return done.stdout.decode().strip()


def test_the_snapshot_does_not_depend_on_the_hash_seed(seed):
    """Nodes run with different hash seeds; set and dict order must never reach the snapshot bytes."""
    payloads = workload(random.Random(seed))
    machine = CoreMachine()
    for index, data in enumerate(payloads, start=1):
        machine.apply(entry(index, wire.decode(data)))
    here = hashlib.sha256(machine.snapshot()).hexdigest()
    assert {snapshot_hash(payloads, s) for s in ("1", "2", "3")} == {here}

"""A core machine fed as its log would feed it, and strategies for the commands it applies.

Shared by the state machine's and the snapshot's tests. Keys, leases and
names come from small pools, so drawn commands often touch the same key,
lease or lock: that is where the rules bite.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import strategies as st

from keel import wire
from keel.consensus import Entry, EntryKind
from keel.core.api import (
    Campaign, Compact, Compare, Delete, KeyValue, LeaseGrant, LeaseRevoke, Lock, Put, Range, RangeReply, Resign,
    Txn, Unlock,
)
from keel.core.machine import ELECTION_PREFIX, LOCK_PREFIX, Command, CoreMachine, LeaseExpire
from keel.core.txn import TARGETS
from keel.transport.envelope import ErrorReply

KEY_POOL = (b"a", b"ab", b"b", b"\xff", b"\xff\x01", LOCK_PREFIX + b"l/" + b"%016x" % 1)
LEASE_POOL = (0, 1, 2, 3)
CLIENTS = ("alice", "alice", "alice", "bob", "bob", "carol", "")  # "": the leader's own commands, outside every session


def lock_key(name: bytes, lease: int) -> bytes:
    """The key that queues `lease` for lock `name` (`keel.core.machine`'s layout)."""
    return LOCK_PREFIX + name + b"/" + b"%016x" % lease


def candidacy_key(name: bytes, lease: int) -> bytes:
    """The key that stands `lease` in election `name`."""
    return ELECTION_PREFIX + name + b"/" + b"%016x" % lease


def entry(index: int, command: Command) -> Entry:
    return Entry(index, 1, EntryKind.COMMAND, wire.encode(command))


class Feed:
    """Applies requests to a machine as committed log entries, one index per command."""

    def __init__(self, machine: CoreMachine | None = None) -> None:
        self.machine = machine if machine is not None else CoreMachine()
        self.index = self.machine.index
        self.seqs: dict[str, int] = {}  # the highest seq each client sent
        self.at = 0.0  # log time of the last command

    def command(self, command: Command) -> Any:
        self.index += 1
        return self.machine.apply(entry(self.index, command))

    def send(self, op: Any, *, client: str = "alice", seq: int | None = None, acked: int = 0,
             at: float | None = None) -> Any:
        """`op` as `client`'s next request, or as request `seq` (a retry), stamped with log time `at`."""
        if seq is None:
            seq = self.seqs.get(client, 0) + 1
        self.seqs[client] = max(self.seqs.get(client, 0), seq)
        if at is not None:
            self.at = at
        return self.command(Command(client, seq, acked, self.at, op))

    def leader(self, op: Any) -> Any:
        """`op` proposed by the leader itself (a lease expiry)."""
        return self.command(Command("", 0, 0, self.at, op))


def get(feed: Feed, key: bytes) -> KeyValue | None:
    reply = feed.machine.read(Range(key))
    return reply.kvs[0] if reply.kvs else None


def error(reply: Any, kind: str, pattern: str) -> None:
    """`reply` is an error of `kind` whose message matches `pattern`."""
    assert isinstance(reply, ErrorReply), reply
    assert reply.kind == kind, reply
    assert re.search(pattern, reply.message), reply.message


def live(machine: CoreMachine) -> dict[bytes, KeyValue]:
    """Every key the machine holds."""
    reply = machine.read(Range(b"", prefix=True))
    assert isinstance(reply, RangeReply)
    return {kv.key: kv for kv in reply.kvs}


# --- strategies -----------------------------------------------------------------------------

keys = st.sampled_from(KEY_POOL)
values = st.sampled_from((b"", b"1", b"2"))
leases = st.sampled_from(LEASE_POOL)
held_leases = st.sampled_from(LEASE_POOL[1:] + LEASE_POOL[:1])  # locks and candidacies: mostly a real lease
names = st.sampled_from((b"l", b"m"))

puts = st.builds(Put, keys, values, leases, st.booleans())
deletes = st.builds(Delete, keys, st.booleans(), st.booleans())
ranges = st.builds(Range, keys, st.booleans(), st.integers(0, 3), st.booleans())
compares = st.builds(Compare, keys, st.sampled_from(TARGETS), st.sampled_from(("==", "!=", "<", ">")), values,
                     st.integers(0, 4))
txn_ops = st.lists(st.one_of(puts, deletes, ranges), max_size=3).map(tuple)
txns = st.builds(Txn, st.lists(compares, max_size=2).map(tuple), txn_ops, txn_ops)

# Two keys, one a prefix of the other: branches that write a key twice, or put under a deleted range, are common.
close_keys = st.sampled_from((b"a", b"ab"))
close_ops = st.lists(st.one_of(st.builds(Put, close_keys, values, leases), st.builds(Delete, close_keys, st.booleans()),
                               st.builds(Range, close_keys, st.booleans())), min_size=1, max_size=4).map(tuple)
close_txns = st.builds(Txn, st.lists(compares, max_size=1).map(tuple), close_ops, close_ops)

grants = st.builds(LeaseGrant, st.sampled_from((1.0, 30.0, 30.0, 0.0)), leases)  # 0.0: below the minimum TTL

ops = st.one_of(
    puts, puts, deletes, txns, txns, grants, grants, grants,
    st.builds(Compact, st.integers(0, 6)),
    st.builds(LeaseRevoke, held_leases),
    st.builds(Lock, names, held_leases),
    st.builds(Lock, names, held_leases),
    st.builds(Unlock, st.builds(lock_key, names, leases)),
    st.builds(Campaign, names, held_leases, values),
    st.builds(Resign, st.builds(candidacy_key, names, leases)),
)


@st.composite
def commands(draw: st.DrawFn, max_size: int = 25, requests: st.SearchStrategy[Any] = ops) -> list[Command]:
    """Commands as a leader would log them: clients' `requests` (some retried) and lease expiries.

    Log time grows in steps of 0, 1 or 2000 s, so idle sessions (3600 s) expire now and then;
    most requests are new, some are retries, and `acked` is anywhere below.
    """
    sent: dict[str, int] = {}
    at = 0.0
    out = []
    for _ in range(draw(st.integers(0, max_size))):
        client = draw(st.sampled_from(CLIENTS))
        at += draw(st.sampled_from((0.0, 0.0, 1.0, 1.0, 2000.0)))
        if not client:
            out.append(Command("", 0, 0, at, LeaseExpire(draw(held_leases))))
            continue
        last = sent.get(client, 0)
        seq = last + 1 if draw(st.integers(0, 3)) else draw(st.integers(1, last + 1))  # at most last: a retry
        sent[client] = max(last, seq)
        acked = draw(st.integers(0, seq - 1))
        out.append(Command(client, seq, acked, at, draw(requests)))
    return out


def feed_all(machine: CoreMachine, batch: list[Command]) -> list[Any]:
    """Apply `batch` from the machine's next index on; the answers."""
    first = machine.index + 1
    return [machine.apply(entry(first + i, command)) for i, command in enumerate(batch)]

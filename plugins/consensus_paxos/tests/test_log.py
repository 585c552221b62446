"""The acceptor's log: overwriting a slot keeps the later ones, in one durable record."""

from __future__ import annotations

import pytest

from keel.consensus import Append, CompactTo, Entry, LogOp, LogState, Recovered, SnapshotMeta

from keel_consensus_paxos.ballot import ballot
from keel_consensus_paxos.log import AcceptorLog
from keel_consensus_paxos.messages import Accept, Accepted

from .harness import command, lone, messages, step

OLD, NEW = ballot(1, 1), ballot(2, 2)
HELD = tuple(command(i, OLD) for i in range(1, 6))  # slots 1-5 accepted under OLD


def held_log(entries: tuple[Entry, ...] = HELD) -> tuple[AcceptorLog, list[LogOp]]:
    ops: list[LogOp] = []
    return AcceptorLog(Recovered(entries=entries), ops.append), ops


def on_disk(ops: list[LogOp], entries: tuple[Entry, ...] = HELD) -> list[Entry]:
    """What a driver's durable log holds after folding `ops` over `entries`."""
    disk = LogState(entries=list(entries))
    for op in ops:
        disk.apply(op)
    return disk.entries


def test_overwriting_a_middle_slot_keeps_the_later_slots_in_one_replacing_append():
    """Paxos Made Simple §2.2: each slot is accepted on its own, so a higher ballot at slot 3 must not erase 4-5.

    Contract 1.2: the run and the kept suffix go to disk as ONE replacing
    Append; a TruncateFrom then Append would lose slots 4-5 to a crash
    between the two records, and with them acceptances a quorum may count.
    """
    log, ops = held_log()
    assert log.accept_run((command(3, NEW, "x"),)) == 3
    expected = [HELD[0], HELD[1], command(3, NEW, "x"), HELD[3], HELD[4]]
    assert ops == [Append(tuple(expected[2:]))]
    assert list(log.between(1, 5)) == expected
    assert on_disk(ops) == expected
    assert log.overwrites == 1


def test_a_run_that_agrees_with_what_is_held_writes_nothing():
    """Paxos Made Simple §2.2: accepting the same proposal again changes no state, so nothing needs to be durable."""
    log, ops = held_log()
    assert log.accept_run(HELD[1:4]) is None
    assert ops == []
    assert log.between(1, 5) == HELD


def test_only_the_slots_from_the_first_difference_on_are_written():
    """Contract 1.2: the replacing Append starts at the first slot that changed; an agreeing prefix is not rewritten."""
    log, ops = held_log()
    run = (HELD[1], HELD[2], command(4, NEW, "y"), command(5, NEW, "z"), command(6, NEW, "w"))
    assert log.accept_run(run) == 4
    assert ops == [Append(run[2:])]
    assert on_disk(ops) == [*HELD[:3], *run[2:]]
    assert log.overwrites == 2  # slots 4 and 5; slot 6 is new


def test_a_run_that_extends_the_log_is_a_plain_append():
    """keel logs are contiguous: a run right after the last slot only appends."""
    log, ops = held_log()
    run = (command(6, NEW), command(7, NEW))
    assert log.accept_run(run) == 6
    assert ops == [Append(run)]
    assert log.last_index == 7 and log.overwrites == 0


@pytest.mark.parametrize("first", [7, 0])
def test_a_run_that_does_not_meet_the_log_is_refused(first):
    """keel logs are contiguous from the snapshot: a run past a gap (or below slot 1) is a bug in the caller."""
    log, ops = held_log()
    with pytest.raises(ValueError, match="does not fit"):
        log.accept_run((command(first, NEW),))
    assert ops == []


def test_compaction_forgets_the_slots_a_snapshot_covers_and_keeps_the_rest():
    """A snapshot stands for every chosen slot up to its index; the slots after it stay accepted."""
    log, ops = held_log()
    meta = SnapshotMeta(index=3, term=OLD)
    log.compact_to(meta)
    log.compact_to(SnapshotMeta(index=2, term=OLD))  # older than the one kept: nothing happens
    assert ops == [CompactTo(meta)]
    assert (log.first_index, log.last_index, log.term_at(3), log.term_at(2)) == (4, 5, OLD, None)


def test_an_acceptor_overwriting_a_slot_for_a_new_leader_persists_one_append_before_answering():
    """Paxos Made Simple §2.2 (phase 2b): the new ballot's value replaces slot 1, slots 2-5 stay, and the
    Accepted reply waits in `send` for that one record to be durable."""
    engine = lone("n2", promised=OLD, entries=HELD)
    ready = step(engine, "n3", Accept(ballot=NEW, first=1, entries=(command(1, NEW, "v"),), commit=0))
    appends = [op for op in ready.persist if isinstance(op, Append)]
    assert appends == [Append((command(1, NEW, "v"), *HELD[1:]))]
    assert messages(ready, Accepted) == [("n3", Accepted(ballot=NEW, ok=True, match=1))]
    assert messages(ready, early=True) == []
    assert engine.log.last_index == 5

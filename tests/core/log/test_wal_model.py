"""Model-based: through any run of writes, syncs, crashes and restarts, the log recovers what `LogState` folds.

The model is two `LogState`s: everything written, and everything covered
by a sync. A crash (closing without a sync; `write` makes no system call,
so the disk holds exactly what the last sync covered) must recover the
second; a clean restart, after a sync, the first. Small segments make every
run rotate and compact, so deleted segments and checkpoints are exercised.
"""

from __future__ import annotations

import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel.consensus.log_ops import (
    Append,
    CompactTo,
    Entry,
    EntryKind,
    LogOp,
    LogState,
    SaveStable,
    SnapshotMeta,
    TruncateFrom,
)
from keel.core.log import DurableLog

RUNS = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
TERMS = st.integers(1, 3)  # few terms, so compactions often match the entry's term and often do not


def copy(state: LogState) -> LogState:
    return LogState(stable=state.stable, snapshot=state.snapshot, entries=list(state.entries))


def draw_op(data: st.DataObject, state: LogState) -> LogOp:
    """An operation the log rules allow after `state`."""
    kind = data.draw(st.sampled_from(["stable", "append", "append", "truncate", "compact"]))
    if kind == "stable":
        return SaveStable(data.draw(st.binary(max_size=12)))
    if kind == "append":
        count = data.draw(st.integers(1, 6))
        term = data.draw(TERMS)
        payload = data.draw(st.binary(max_size=40))
        first = state.last_index + 1
        return Append(tuple(Entry(i, term, EntryKind.COMMAND, payload) for i in range(first, first + count)))
    if kind == "truncate":
        return TruncateFrom(data.draw(st.integers(state.first_index, state.last_index + 1)))
    index = data.draw(st.integers(1, state.last_index + 2))
    held = state.first_index <= index <= state.last_index
    same = held and data.draw(st.booleans())
    term = state.entries[index - state.first_index].term if same else data.draw(TERMS)
    return CompactTo(SnapshotMeta(index=index, term=term, config=data.draw(st.binary(max_size=4))))


@RUNS
@given(data=st.data(), segment_bytes=st.sampled_from([1, 200, 1000]))
def test_recovery_matches_the_fold_of_what_was_synced(data, segment_bytes):
    with tempfile.TemporaryDirectory() as directory:
        written, durable = LogState(), LogState()
        log = DurableLog.open(directory, segment_bytes=segment_bytes)
        try:
            for _ in range(data.draw(st.integers(1, 30), label="steps")):
                step = data.draw(st.sampled_from(["write", "write", "write", "sync", "crash", "restart"]))
                if step == "write":
                    ops = []
                    for _ in range(data.draw(st.integers(1, 4))):
                        ops.append(draw_op(data, written))
                        written.apply(ops[-1])
                    log.write(ops)
                    continue
                if step == "sync":
                    log.sync()
                    durable = copy(written)
                    continue
                if step == "restart":
                    log.sync()
                    durable = copy(written)
                log.close()
                log = DurableLog.open(directory, segment_bytes=segment_bytes)
                assert log.recovered() == durable.recovered()
                written = copy(durable)
            log.sync()
            log.close()
            log = DurableLog.open(directory, segment_bytes=segment_bytes)
            assert log.recovered() == written.recovered()
        finally:
            log.close()

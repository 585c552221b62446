"""Model-based: through any run of writes, syncs, crashes and restarts, the log recovers what `LogState` folds.

The model is two `LogState`s: everything written, and everything covered
by a sync. A crash (closing without a sync; `write` makes no system call,
so the disk holds exactly what the last sync covered) must recover the
second; a clean restart, after a sync, the first; a crash in the middle of
a sync (its bytes cut anywhere), the second plus a prefix of what that sync
carried. Small segments make every run rotate and compact, so deleted
segments and checkpoints are exercised.
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
    Recovered,
    SaveStable,
    SnapshotMeta,
    TruncateFrom,
)
from keel.core.log import DurableLog

RUNS = settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
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
        # Mostly after the last entry; sometimes a replacing append from a held index (contract 1.2).
        replacing = data.draw(st.booleans())
        first = data.draw(st.integers(state.first_index, state.last_index + 1)) if replacing else state.last_index + 1
        return Append(tuple(Entry(i, term, EntryKind.COMMAND, payload) for i in range(first, first + count)))
    if kind == "truncate":
        return TruncateFrom(data.draw(st.integers(state.first_index, state.last_index + 1)))
    index = data.draw(st.integers(0, state.last_index + 2))
    held = state.first_index <= index <= state.last_index
    same = held and data.draw(st.booleans())
    term = state.entries[index - state.first_index].term if same else data.draw(TERMS)
    return CompactTo(SnapshotMeta(index=index, term=term, config=data.draw(st.binary(max_size=4))),
                     keep_suffix=data.draw(st.booleans()))


class Run:
    """One log under test and its model: what was written, and what the last sync covered."""

    def __init__(self, directory: str, segment_bytes: int) -> None:
        self.directory, self.segment_bytes = directory, segment_bytes
        self.written, self.durable = LogState(), LogState()
        self.pending: list[LogOp] = []  # written since the last sync
        self.log = DurableLog.open(directory, segment_bytes=segment_bytes)

    def write(self, data: st.DataObject) -> None:
        ops = []
        for _ in range(data.draw(st.integers(1, 4))):
            ops.append(draw_op(data, self.written))
            self.written.apply(ops[-1])
        self.log.write(ops)
        self.pending += ops

    def sync(self) -> None:
        self.log.sync()
        self.synced()

    def synced(self) -> None:
        self.durable, self.pending = copy(self.written), []

    def crash(self) -> None:
        """Stop without a sync: `write` makes no system call, so the disk holds what the last sync covered."""
        self.log.close()
        self.written, self.pending = copy(self.durable), []
        self.reopen_expecting([self.durable.recovered()])

    def torn_sync(self, data: st.DataObject) -> None:
        """Crash during a sync that reached the disk only in part: a prefix of its operations survives."""
        segments = self.log.segments()
        segment = segments[-1]
        before = segment.stat().st_size
        self.log.sync()
        if self.log.segments() != segments:
            # It started a new segment or deleted old ones, which it does only
            # after the batch's fsync returned: the batch was whole by then.
            self.synced()
            return
        after = segment.stat().st_size
        self.log.close()
        with open(segment, "r+b") as file:
            file.truncate(data.draw(st.integers(before, after), label="torn at"))
        prefixes, state = [self.durable.recovered()], copy(self.durable)
        for op in self.pending:
            state.apply(op)
            prefixes.append(state.recovered())
        recovered = self.reopen_expecting(prefixes)
        self.durable = LogState(stable=recovered.stable, snapshot=recovered.snapshot, entries=list(recovered.entries))
        self.written, self.pending = copy(self.durable), []

    def reopen_expecting(self, candidates: list[Recovered]) -> Recovered:
        self.log = DurableLog.open(self.directory, segment_bytes=self.segment_bytes)
        recovered = self.log.recovered()
        assert recovered in candidates
        return recovered


@RUNS
@given(data=st.data(), segment_bytes=st.sampled_from([1, 200, 1000]))
def test_recovery_matches_the_fold_of_what_was_synced(data, segment_bytes):
    with tempfile.TemporaryDirectory() as directory:
        run = Run(directory, segment_bytes)
        try:
            for _ in range(data.draw(st.integers(1, 30), label="steps")):
                step = data.draw(st.sampled_from(["write", "write", "write", "sync", "crash", "restart", "torn sync"]))
                if step == "write":
                    run.write(data)
                elif step == "sync":
                    run.sync()
                elif step == "crash":
                    run.crash()
                elif step == "restart":
                    run.sync()
                    run.crash()
                else:
                    run.torn_sync(data)
            run.sync()
            run.crash()
        finally:
            run.log.close()

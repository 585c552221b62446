"""The acceptor's log: the value accepted at each slot, with the ballot it was accepted in.

Theory of operation. A Multi-Paxos acceptor keeps, per slot, the highest
ballot it accepted and that ballot's value (an `Entry` whose `term` is the
ballot). keel's log keeps entries contiguous from the snapshot on, so the
acceptor accepts a slot only right after ones it holds (see `acceptor`).
Overwriting a slot with a higher ballot's value must not lose the later
slots accepted meanwhile: `accept_run` writes the new run and the kept
suffix as one replacing `Append` (contract 1.2), a single durable record.
`keel.consensus.EntryLog` keeps the view in step with what is persisted.
Slots up to the engine's commit index hold chosen values.
"""

from __future__ import annotations

from collections.abc import Callable

from keel.consensus import NO_SNAPSHOT, Append, Entry, EntryLog, LogOp, Recovered

__all__ = ["NO_SNAPSHOT", "AcceptorLog"]


class AcceptorLog(EntryLog):
    """Accepted entries after a snapshot point; every change is also handed to `persist`."""

    name = "paxos log"

    def __init__(self, recovered: Recovered, persist: Callable[[LogOp], None]) -> None:
        super().__init__(recovered, persist)
        self.overwrites = 0  # slots whose accepted value a higher ballot replaced

    def accept_run(self, entries: tuple[Entry, ...]) -> int | None:
        """Hold `entries` (consecutive, the first at most one past the last held).

        Slots already holding the same entry stay as they are; from the first
        that differs on, the run replaces what is held, and the entries held
        after the run are kept, all in one replacing `Append`. Returns the
        first slot whose content changed, or None when none did.
        """
        if not entries:
            return None
        first = entries[0].index
        if first > self.last_index + 1 or first < self.first_index:
            raise ValueError(f"paxos log: a run from slot {first} does not fit {self.first_index}..{self.last_index}")
        skip = 0
        while skip < len(entries) and entries[skip].index <= self.last_index and \
                self.entry(entries[skip].index) == entries[skip]:
            skip += 1
        if skip == len(entries):
            return None
        run = entries[skip:]
        end = run[-1].index
        self.overwrites += max(0, min(end, self.last_index) - run[0].index + 1)
        self.apply(Append(run + self.between(end + 1, self.last_index)))
        return run[0].index

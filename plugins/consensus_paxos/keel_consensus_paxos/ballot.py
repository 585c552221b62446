"""Ballots: (round, member number) pairs, totally ordered, carried as one integer.

Theory of operation. Paxos needs every leader's ballot to be unique and
all ballots to be ordered (Lamport, "Paxos Made Simple" §2.2). A ballot is a
round number and the proposer's member number, compared round first, and
travels as `round * SPAN + number`: ordering the integers orders the pairs,
and the integer is what the host's contract calls an entry's `term`. A
node never leads twice with one ballot, so two entries with equal ballots
at one slot hold one value.

Member numbers come from the configuration (`Configuration.numbers`): the
bootstrap voters are numbered 1.. in sorted order, and each node added later
gets the next number, never reused, so every node agrees on them. They must
stay below `SPAN`. Printed as `round.number` (`7.2`: round 7 of member 2).
"""

from __future__ import annotations

__all__ = ["SPAN", "ballot", "describe", "number_of", "round_of"]

SPAN = 1000  # member numbers run 1..999; a decimal SPAN keeps ballots readable in `keel status`


def ballot(round_: int, number: int) -> int:
    """The ballot of `round_` by member `number`."""
    if not 0 < number < SPAN:
        raise ValueError(f"paxos ballot: member number {number} is outside 1..{SPAN - 1}")
    if round_ < 0:
        raise ValueError(f"paxos ballot: round {round_} is negative")
    return round_ * SPAN + number


def round_of(value: int) -> int:
    return value // SPAN


def number_of(value: int) -> int:
    return value % SPAN


def describe(value: int) -> str:
    """`round.number`, as operators read it."""
    return f"{round_of(value)}.{number_of(value)}"

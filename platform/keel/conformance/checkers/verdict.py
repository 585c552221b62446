"""What a linearizability check found, per key and overall, in words a human can act on."""

from __future__ import annotations

from collections.abc import Hashable

import attrs

from keel.conformance.checkers.history import Operation

__all__ = ["KeyResult", "Verdict", "Violation"]

SHOWN_CONCURRENT = 6  # concurrent operations an explanation names; the record keeps them all


@attrs.frozen(kw_only=True)
class Violation:
    """Where the search got stuck on one key, at the deepest point it reached.

    `stuck` is the operation that had to take effect before it completed but
    fits nowhere after `prefix`, the longest linearizable prefix found (in
    linearization order), with `state` the model state after it. `before`
    are the latest operations that completed before `stuck` was invoked (so
    precede it in any order) and `concurrent` those whose intervals overlap
    it: together they show a human why it cannot fit (a read of an
    overwritten value, say).
    """

    key: Hashable
    stuck: Operation
    prefix: tuple[Operation, ...] = attrs.field(converter=tuple)
    state: Hashable
    state_text: str  # the model's words for `state`
    before: tuple[Operation, ...] = attrs.field(converter=tuple)  # latest last
    concurrent: tuple[Operation, ...] = attrs.field(converter=tuple)  # in invocation order

    def explain(self) -> str:
        """A few sentences naming the operations around the point where the search got stuck."""
        text = (f"the search got stuck at {self.stuck.describe()}: it fits nowhere after the longest "
                f"linearizable prefix found ({len(self.prefix):,} operations, after which {self.state_text})")
        if self.before:
            text += ". Completed before it was invoked: " + _some(self.before, len(self.before))
        if self.concurrent:
            text += ". Concurrent with it: " + _some(self.concurrent, SHOWN_CONCURRENT)
        return text + "."


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _some(ops: tuple[Operation, ...], most: int) -> str:
    shown = "; ".join(op.describe() for op in ops[:most])
    return shown + (f"; and {len(ops) - most} more" if len(ops) > most else "")


@attrs.frozen(kw_only=True)
class KeyResult:
    """The check of one independent part of a history (one key)."""

    key: Hashable
    linearizable: bool | None  # None: the search ran out of budget first
    operations: int  # operations searched; not fails, indeterminate reads, nor what the model dropped
    steps: int  # search steps spent (tries and backtracks)
    order: tuple[Operation, ...] = attrs.field(default=(), converter=tuple)  # a witness, when linearizable
    violation: Violation | None = None


@attrs.frozen(kw_only=True)
class Verdict:
    """Whether a history is linearizable: True, False, or None (unknown: a budget ran out)."""

    linearizable: bool | None
    keys: tuple[KeyResult, ...] = attrs.field(converter=tuple)
    budget: str = ""  # which budget ran out, when `linearizable` is None

    @classmethod
    def of(cls, keys: tuple[KeyResult, ...], budget: str = "") -> Verdict:
        """Combine per-key results: one violation decides; else one unknown leaves it unknown."""
        if any(k.linearizable is False for k in keys):
            verdict: bool | None = False
        elif any(k.linearizable is None for k in keys):
            verdict = None
        else:
            verdict = True
        return cls(linearizable=verdict, keys=keys, budget=budget)

    @property
    def violations(self) -> tuple[Violation, ...]:
        """Every key's violation, in key order."""
        return tuple(k.violation for k in self.keys if k.violation is not None)

    @property
    def violation(self) -> Violation | None:
        """The first violation, or None."""
        found = self.violations
        return found[0] if found else None

    @property
    def unknown_keys(self) -> tuple[Hashable, ...]:
        return tuple(k.key for k in self.keys if k.linearizable is None)

    @property
    def operations(self) -> int:
        return sum(k.operations for k in self.keys)

    @property
    def steps(self) -> int:
        return sum(k.steps for k in self.keys)

    def explain(self) -> str:
        """One paragraph: the verdict, and for a violation the operations that show it."""
        count = ", ".join((_count(len(self.keys), "key"), _count(self.operations, "operation"),
                           _count(self.steps, "search step")))
        if self.linearizable:
            return f"linearizable: {count}."
        if self.linearizable is None:
            keys = ", ".join(repr(k) for k in self.unknown_keys)
            return (f"linearizability unknown: the search gave up on key(s) {keys} when {self.budget} ran out, "
                    f"before finding either an order or a contradiction ({count}); "
                    "raise the budget or check a shorter history.")
        first = self.violation
        assert first is not None
        checked = next(k.operations for k in self.keys if k.violation is first)
        others = len(self.violations) - 1
        also = f" ({others} other key(s) violate too)" if others else ""
        return (f"not linearizable: key {first.key!r}{also} has no order of its {checked:,} operations that "
                f"respects both real time and the model; {first.explain()}")

"""Sequential specifications the linearizability search checks histories against.

A `Model` says what one object does when operations run one at a time:
its initial state and a `step` that either accepts an operation (returning the
state after it) or rejects it (a read that returned a value the state does not
hold). States must be hashable and compare by value: the search memoizes on
them. `read_only` names the operations that never change the state (reads),
which the search may place eagerly. `partition` splits a history into parts
that can be checked apart (P-compositionality: a history is linearizable when
each key's sub-history is), so the search never sees two independent keys
interleaved.

`KeyValueModel` is the key-value store of the conformance clients: each key
an independent register that starts absent. A richer store (revisions,
multi-key transactions) plugs in the same way, returning one partition when
its keys are not independent.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Protocol

from keel.conformance.checkers.history import Operation

__all__ = ["KeyValueModel", "Model", "Part"]

Part = tuple[Hashable, Sequence[Operation]]  # (label such as the key, its operations in invocation order)


class Model(Protocol):
    """A sequential specification: initial state, transitions, and independent parts."""

    def initial(self) -> Hashable:
        """The state before any operation."""
        ...

    def step(self, state: Hashable, op: Operation) -> tuple[bool, Hashable]:
        """Apply `op` as if it ran alone: (whether its recorded outcome is possible, the state after).

        Called only for operations that took effect (`ok`) or may have (`info`);
        for an `info` operation the recorded result is unknown and must be ignored.
        """
        ...

    def read_only(self, op: Operation) -> bool:
        """Whether `op` leaves the state as it was whenever `step` accepts it (a read).

        The search places such an operation as soon as it fits, never trying
        other orders around it, and drops it when indeterminate (it then
        constrains nothing). Answering False is always safe, only slower.
        """
        ...

    def partition(self, ops: Sequence[Operation]) -> Iterable[Part]:
        """Split `ops` (no `fail` among them) into independently checkable parts.

        May drop operations that cannot matter, such as an indeterminate write
        of a value nothing observed: each one left in doubles the search.

        Raises:
            ValueError: an operation this model does not know.
        """
        ...

    def describe(self, state: Hashable) -> str:
        """The state in a few words, for violation reports."""
        ...


class KeyValueModel:
    """Each key a register that starts absent: `read`, `write`, `cas` ([expected, new]), `delete`.

    A read returns the value (None when absent); a cas succeeds only when
    the key holds `expected` (None: absent), a failed cas changing nothing.
    """

    OPERATIONS = ("read", "write", "cas", "delete")

    def initial(self) -> Hashable:
        return None

    def step(self, state: Hashable, op: Operation) -> tuple[bool, Hashable]:
        f = op.f
        if f == "read":
            # An indeterminate read never gets here: being read-only, it is dropped.
            return op.result == state, state
        if f == "write":
            return True, op.value
        if f == "cas":
            expected, new = op.value
            return (True, new) if state == expected else (False, state)
        return True, None  # delete; partition refused anything else

    def partition(self, ops: Sequence[Operation]) -> Iterable[Part]:
        by_key: dict[Hashable, list[Operation]] = {}
        for op in ops:
            if op.f not in self.OPERATIONS:
                raise ValueError(f"operation {op.index} by process {op.process}: f {op.f!r}: "
                                 f"the key-value model knows {', '.join(self.OPERATIONS)}")
            if op.f == "cas" and not (isinstance(op.value, tuple) and len(op.value) == 2):
                raise ValueError(f"operation {op.index} by process {op.process}: cas value {op.value!r}: "
                                 "a pair [expected, new]")
            by_key.setdefault(op.key, []).append(op)
        parts = [(key, _without_unseen_writes(part)) for key, part in by_key.items()]
        return sorted(parts, key=lambda item: (str(type(item[0])), str(item[0])))

    def read_only(self, op: Operation) -> bool:
        # A cas of a value with itself changes nothing whenever it succeeds.
        return op.f == "read" or (op.f == "cas" and op.value[0] == op.value[1])

    def describe(self, state: Hashable) -> str:
        return "the key is absent" if state is None else f"the key holds {state!r}"


def _without_unseen_writes(ops: list[Operation]) -> list[Operation]:
    """`ops` less the indeterminate writes (and cas) of a value no read or cas of the key observed.

    Such a write may as well never have happened: in any order that places
    it, nothing after it can see its value, so the next operation to fit
    overwrites it (a write or delete), and dropping it changes no other
    step. Left in, each one doubles the configurations the search visits
    (placed or not), which makes a long history with many timeouts slow.
    """
    observed = {op.result for op in ops if op.f == "read" and op.completion == "ok"}
    observed.update(op.value[0] for op in ops if op.f == "cas")
    return [op for op in ops if op.completion == "ok" or op.f in ("read", "delete") or _written(op) in observed]


def _written(op: Operation) -> Hashable:
    return op.value[1] if op.f == "cas" else op.value

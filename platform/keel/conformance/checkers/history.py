"""Client histories: what each operation asked, what came back, and when.

An `Operation` is one client call seen from outside: invoked at
`invoke_time`, completed at `complete_time` as `ok` (it took effect once,
somewhere in between), `fail` (it took no effect) or `info` (indeterminate: a
timeout or a lost connection; it may have taken effect at any time after its
invocation, or never, so its completion time is +infinity).

`History` is the recorder clients use while they run, one `invoke` and then
one `ok`/`fail`/`info` per operation; an operation never completed counts as
`info`. Values are frozen on the way in (lists become tuples) so a model can
keep them in hashable states.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from typing import Any, Literal

import attrs
from attrs.validators import in_, instance_of

__all__ = ["COMPLETIONS", "Completion", "History", "Note", "OpHandle", "Operation", "freeze"]

Completion = Literal["ok", "fail", "info"]
COMPLETIONS: tuple[Completion, ...] = ("ok", "fail", "info")


def freeze(value: Any) -> Any:
    """`value` made hashable: lists become tuples, dicts sorted item tuples, recursively."""
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    return value


def _time(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise TypeError(f"operation time: {value!r}: a number of seconds")
    return float(value)


@attrs.frozen(kw_only=True)
class Operation:
    """One client operation of a history, invoked and (maybe) completed."""

    index: int  # its position among the history's operations, in invocation order
    process: Hashable  # the client that ran it; one operation at a time per process
    f: str  # what it does: `read`, `write`, `cas`, `delete` for the key-value model
    key: Hashable = None  # the key it touches; None for operations on no single key
    value: Any = attrs.field(default=None, converter=freeze)  # what it asked: written value, [expected, new]
    invoke_time: float = attrs.field(converter=_time)
    completion: Completion = attrs.field(default="info", validator=in_(COMPLETIONS))
    result: Any = attrs.field(default=None, converter=freeze)  # what came back: the value read
    complete_time: float = attrs.field(default=math.inf, converter=_time)

    @complete_time.validator
    def _completes_after_invoke(self, _attribute: attrs.Attribute[float], value: float) -> None:
        if value < self.invoke_time:
            raise ValueError(f"operation {self.index}: completed at {value}, before its invocation at "
                             f"{self.invoke_time}")
        if self.completion == "info" and value != math.inf:
            raise ValueError(f"operation {self.index}: indeterminate, so it completes at +inf, not {value}")

    def describe(self) -> str:
        """One human line: `process 6 read key7 -> 20001341, ok over [21.864101, 21.865535]`."""
        what = f"process {self.process} {self.f}"
        if self.key is not None:
            what += f" {self.key}"
        if self.value is not None:
            what += f" {_show(self.value)}"
        # A read's answer is its point; other answers only when they add something.
        if self.completion == "ok" and (self.f == "read" or self.result not in (None, self.value)):
            what += f" -> {_show(self.result)}"
        end = "..." if self.complete_time == math.inf else f"{self.complete_time:.6f}"
        return f"{what}, {self.completion} over [{self.invoke_time:.6f}, {end}]"


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) if v is not None else "null" for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


@attrs.frozen
class OpHandle:
    """What `History.invoke` returns: pass it to `ok`, `fail` or `info`."""

    index: int


@attrs.frozen(kw_only=True)
class Note:
    """An event that is no client operation: a fault (`kill-leader n2`) or a remark."""

    process: Hashable
    f: str
    value: Any = attrs.field(default=None, converter=freeze)
    time: float = attrs.field(converter=_time)


@attrs.define
class History:
    """A recorder of client operations, in the order they are invoked.

    >>> h = History()
    >>> w = h.invoke(1, "write", "k", 3, time=0.0)
    >>> h.ok(w, 3, time=0.1)
    """

    _ops: list[Operation] = attrs.field(factory=list, alias="ops")
    _open: dict[Hashable, int] = attrs.field(factory=dict, init=False)
    notes: list[Note] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        for index, op in enumerate(self._ops):
            if op.index != index:
                raise ValueError(f"history: operation {op.index} at position {index}: indices count from 0")

    @classmethod
    def of(cls, operations: Iterable[Operation]) -> History:
        """A history of finished operations, renumbered in invocation order."""
        ordered = sorted(operations, key=lambda op: (op.invoke_time, op.index))
        return cls([attrs.evolve(op, index=i) for i, op in enumerate(ordered)])

    def invoke(self, process: Hashable, f: str, key: Hashable = None, value: Any = None, *,
               time: float) -> OpHandle:
        """Record that `process` started `f` on `key`; its outcome is `info` until completed.

        Raises:
            ValueError: `process` still has an operation open, or time went backwards.
        """
        if process in self._open:
            raise ValueError(f"history: process {process!r} invoked {f} with its operation "
                             f"{self._open[process]} still open")
        if self._ops and time < self._ops[-1].invoke_time:
            raise ValueError(f"history: invoke at {time}, before the previous invoke at "
                             f"{self._ops[-1].invoke_time}")
        index = len(self._ops)
        self._ops.append(Operation(index=index, process=process, f=f, key=key, value=value, invoke_time=time))
        self._open[process] = index
        return OpHandle(index)

    def ok(self, handle: OpHandle, result: Any = None, *, time: float) -> None:
        """Record that the operation took effect; `result` is what it returned (the value read)."""
        self._complete(handle, "ok", result, time)

    def fail(self, handle: OpHandle, result: Any = None, *, time: float) -> None:
        """Record that the operation certainly took no effect (a cas whose compare failed)."""
        self._complete(handle, "fail", result, time)

    def info(self, handle: OpHandle, result: Any = None, *, time: float) -> None:
        """Record that the outcome is unknown (a timeout): it may take effect any time later, or never.

        `time` is only checked: an indeterminate operation stays open forever.
        """
        self._complete(handle, "info", result, time)

    def note(self, process: Hashable, f: str, value: Any = None, *, time: float) -> None:
        """Record an event that is not a client operation, such as a fault the test injected."""
        self.notes.append(Note(process=process, f=f, value=value, time=time))

    def _complete(self, handle: OpHandle, completion: Completion, result: Any, time: float) -> None:
        op = self._ops[handle.index]
        if self._open.get(op.process) != handle.index:
            raise ValueError(f"history: operation {handle.index} ({op.f} by {op.process!r}) is not open")
        end = math.inf if completion == "info" else time
        if time < op.invoke_time:
            raise ValueError(f"history: operation {handle.index} completed at {time}, before its invoke at "
                             f"{op.invoke_time}")
        self._ops[handle.index] = attrs.evolve(op, completion=completion, result=result, complete_time=end)
        del self._open[op.process]

    @property
    def operations(self) -> tuple[Operation, ...]:
        """Every operation in invocation order; those still open count as `info`."""
        return tuple(self._ops)

    def open_operations(self) -> tuple[Operation, ...]:
        """The operations invoked but not completed yet."""
        return tuple(self._ops[i] for i in sorted(self._open.values()))

    def __len__(self) -> int:
        return len(self._ops)

    def __getitem__(self, index: int) -> Operation:
        """The operation numbered `index`, as recorded so far."""
        return self._ops[index]

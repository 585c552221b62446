"""Checkers of recorded client histories: is what the clients saw linearizable?

Clients record each operation in a `History` (`invoke`, then `ok`, `fail`
or `info`), or a history is read from Jepsen-style JSON lines with
`load_jsonl`. `check_linearizable(history)` returns a `Verdict`;
`assert_linearizable(history)` raises `AssertionError` with a one-paragraph
explanation, for plugin authors' own test suites:

    history = History()
    w = history.invoke(1, "write", "k", 3, time=0.0)
    history.ok(w, time=0.1)
    assert_linearizable(history)

`check_history_file(path)` loads and checks a recorded file; `python -m
keel.conformance.checkers FILE.jsonl[.gz]` prints its verdict and exits 1
when it is not linearizable.
"""

from keel.conformance.checkers.command import check_history_file
from keel.conformance.checkers.history import COMPLETIONS, Completion, History, Note, OpHandle, Operation
from keel.conformance.checkers.jsonl import dump_jsonl, load_jsonl, parse_events
from keel.conformance.checkers.linearizability import DEFAULT_MAX_STEPS, assert_linearizable, check_linearizable
from keel.conformance.checkers.model import KeyValueModel, Model, Part
from keel.conformance.checkers.verdict import KeyResult, Verdict, Violation

__all__: list[str] = [
    "COMPLETIONS",
    "DEFAULT_MAX_STEPS",
    "Completion",
    "History",
    "KeyResult",
    "KeyValueModel",
    "Model",
    "Note",
    "OpHandle",
    "Operation",
    "Part",
    "Verdict",
    "Violation",
    "assert_linearizable",
    "check_history_file",
    "check_linearizable",
    "dump_jsonl",
    "load_jsonl",
    "parse_events",
]

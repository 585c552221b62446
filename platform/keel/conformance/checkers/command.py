"""Checking a recorded history file: the function a command calls, and the command itself.

`check_history_file` does the work without printing or exiting, for the
`keel` command line to reuse; `main` is `python -m keel.conformance.checkers
FILE.jsonl[.gz]`, which prints the verdict and exits 0 when the history is
linearizable, 1 when it is not or the budget ran out first, and 2 when the
file or an argument is wrong.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from keel.conformance.checkers.jsonl import load_jsonl
from keel.conformance.checkers.linearizability import DEFAULT_MAX_STEPS, check_linearizable
from keel.conformance.checkers.model import KeyValueModel, Model
from keel.conformance.checkers.verdict import Verdict
from keel.errors import ConfigError

__all__ = ["EXIT_NOT_LINEARIZABLE", "EXIT_USAGE", "check_history_file", "main"]

EXIT_NOT_LINEARIZABLE = 1  # a violation found, or no answer within the budget
EXIT_USAGE = 2  # the file or an argument is wrong, as for every keel command


def check_history_file(path: str | os.PathLike[str], model: Model | None = None, *,
                       max_steps: int = DEFAULT_MAX_STEPS, max_seconds: float | None = None) -> Verdict:
    """Load a JSON lines history (gzipped or not) and check it for linearizability.

    Raises:
        ConfigError: the file is unreadable, breaks the format, or holds an
            operation the model does not know.
    """
    history = load_jsonl(path)
    try:
        return check_linearizable(history, model or KeyValueModel(), max_steps=max_steps, max_seconds=max_seconds)
    except ValueError as exc:
        raise ConfigError("", f"history {os.path.basename(os.fspath(path))}: {exc}") from None


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command on `argv` (default: the process arguments); return its exit status."""
    out = sys.stdout if out is None else out
    parser = argparse.ArgumentParser(
        prog="python -m keel.conformance.checkers",
        description="Check a recorded client history (Jepsen-style JSON lines) for linearizability.",
    )
    parser.add_argument("history", help="a .jsonl or .jsonl.gz file of invoke/ok/fail/info events")
    parser.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS,
                        help=f"search steps per key before giving up (default: {DEFAULT_MAX_STEPS:,})")
    parser.add_argument("--max-seconds", type=float, default=None, help="wall-clock budget (default: none)")
    parser.add_argument("--keys", action="store_true", help="also print one line per key")
    args = parser.parse_args(argv)
    if args.max_steps <= 0 or (args.max_seconds is not None and args.max_seconds <= 0):
        parser.error("--max-steps and --max-seconds must be positive")
    started = time.perf_counter()
    try:
        verdict = check_history_file(args.history, max_steps=args.max_steps, max_seconds=args.max_seconds)
    except ConfigError as exc:
        sys.stderr.write(f"config error: {exc}\n")
        return EXIT_USAGE
    elapsed = time.perf_counter() - started
    out.write(verdict.explain() + "\n")
    if args.keys:
        for result in verdict.keys:
            answer = {True: "linearizable", False: "NOT linearizable", None: "unknown"}[result.linearizable]
            out.write(f"  {result.key!s}: {answer}, {result.operations:,} operations, {result.steps:,} steps\n")
    out.write(f"checked in {elapsed:.2f} s\n")
    return 0 if verdict.linearizable else EXIT_NOT_LINEARIZABLE

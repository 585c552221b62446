"""Histories as Jepsen-style JSON lines, one event per line, optionally gzipped.

    {"process": 3, "type": "invoke", "f": "cas", "key": "k1", "value": [4, 7], "time": 12.5031}
    {"process": 3, "type": "ok",     "f": "cas", "key": "k1", "value": [4, 7], "time": 12.5102}

A client event has an integer `process` and a `key`; its `invoke` is
followed by one `ok`, `fail` or `info` from the same process, matched by
process. The completion's `value` is the operation's result (the value
read). An operation whose completion never comes (the history ends first, or
its process invokes again) is indeterminate, as if completed `info`. Events
of any other process (`"nemesis"` killing a leader), which have no key, are
kept as notes.

A file that breaks these rules raises `ConfigError` naming the line: it is
operator input, such as a history recorded by another tool.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from keel.conformance.checkers.history import COMPLETIONS, History, OpHandle, Operation
from keel.errors import ConfigError

__all__ = ["dump_jsonl", "load_jsonl", "parse_events"]

GZIP_MAGIC = b"\x1f\x8b"  # the first two bytes of every gzip stream


def load_jsonl(source: str | os.PathLike[str] | IO[bytes]) -> History:
    """Read a history from a JSON lines file (gzipped or not, told by its first bytes).

    Raises:
        ConfigError: the file cannot be read, or an event breaks the format.
    """
    if isinstance(source, str | os.PathLike):
        name = os.path.basename(os.fspath(source))
    else:
        name = os.path.basename(str(getattr(source, "name", "history")))
    try:
        if isinstance(source, str | os.PathLike):
            with open(source, "rb") as raw:
                return parse_events(_lines(raw), name=name)
        if isinstance(source, io.TextIOBase):
            return parse_events(source, name=name)
        return parse_events(_lines(source), name=name)
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
        raise ConfigError("", f"history {name}: cannot be read: {exc}") from exc


def _lines(raw: IO[bytes]) -> Iterator[str]:
    head = raw.read(len(GZIP_MAGIC))
    rest = io.BufferedReader(_Prepended(head, raw))
    stream: IO[bytes] = gzip.GzipFile(fileobj=rest) if head == GZIP_MAGIC else rest  # type: ignore[assignment]
    for line in stream:
        yield line.decode("utf-8")


class _Prepended(io.RawIOBase):
    """`raw` with `head`, already read from it to sniff the format, put back in front."""

    def __init__(self, head: bytes, raw: IO[bytes]) -> None:
        self._head = head
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size], self._head = self._head[:size], self._head[size:]
            return size
        chunk = self._raw.read(len(buffer))
        buffer[:len(chunk)] = chunk
        return len(chunk)


def parse_events(lines: Iterable[str], *, name: str = "history") -> History:
    """Build a `History` from JSON lines (blank lines are skipped).

    Raises:
        ConfigError: a line is not a JSON object of the format, naming the line.
    """
    history = History()
    open_ops: dict[Any, OpHandle] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"history {name} line {number}"
        try:
            event = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError("", f"{where}: {line.strip()[:60]!r}: not JSON ({exc.msg})") from None
        if not isinstance(event, dict):
            raise ConfigError("", f"{where}: {line.strip()[:60]!r}: a JSON object per line")
        _add(history, open_ops, event, where)
    return history


def _add(history: History, open_ops: dict[Any, OpHandle], event: dict[str, Any], where: str) -> None:
    process, kind, f = event.get("process"), event.get("type"), event.get("f")
    when = event.get("time")
    if isinstance(when, bool) or not isinstance(when, int | float) or not math.isfinite(when):
        raise ConfigError("", f"{where}: time {when!r}: a finite number of seconds")
    if not isinstance(f, str):
        raise ConfigError("", f"{where}: f {f!r}: the operation's name, a string")
    if isinstance(process, bool) or not isinstance(process, int):
        if "key" in event:
            # Only faults and remarks go under other names; reading a client
            # operation as a note would drop it from the check unnoticed.
            raise ConfigError("", f"{where}: process {process!r} on key {event['key']!r}: "
                                  "client processes are integers")
        history.note(process if _hashable(process) else repr(process), f, event.get("value"), time=when)
        return
    if kind not in ("invoke", *COMPLETIONS):
        raise ConfigError("", f"{where}: type {kind!r}: one of invoke, ok, fail, info")
    key = event.get("key")
    if not _hashable(key):
        raise ConfigError("", f"{where}: key {key!r}: a string, number or null")
    if kind == "invoke":
        if process in open_ops:
            # Invoking again means the earlier operation's completion was never
            # recorded: it may have taken effect or not, which is what `info` means.
            history.info(open_ops.pop(process), time=when)
        if len(history) and when < history[len(history) - 1].invoke_time:
            raise ConfigError("", f"{where}: time {when}: before the previous invocation; events go in time order")
        open_ops[process] = history.invoke(process, f, key, event.get("value"), time=when)
        return
    handle = open_ops.pop(process, None)
    if handle is None:
        raise ConfigError("", f"{where}: {kind} from process {process}: it has no operation open")
    op = history[handle.index]
    if (op.f, op.key) != (f, key):
        raise ConfigError("", f"{where}: {kind} of {f} {key!r}: process {process} invoked {op.f} {op.key!r}")
    if when < op.invoke_time:
        raise ConfigError("", f"{where}: time {when}: before its invocation at {op.invoke_time}")
    getattr(history, kind)(handle, event.get("value"), time=when)


def _hashable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float)


def dump_jsonl(history: History, target: IO[str]) -> None:
    """Write `history` as JSON lines that `load_jsonl` reads back to the same operations.

    Events go in time order. An indeterminate operation gets no completion
    line (its completion time is not kept), which reads back as `info`.

    Raises:
        ValueError: a client operation whose process is not an int (it would read back as a note).
    """
    events: list[tuple[float, int, int, dict[str, Any]]] = []
    for op in history.operations:
        if isinstance(op.process, bool) or not isinstance(op.process, int):
            raise ValueError(f"dump_jsonl: operation {op.index}: process {op.process!r}: clients are ints")
        base = {"process": op.process, "f": op.f, "key": op.key}
        # (time, index, phase) keeps one process's invoke, completion, next invoke
        # in order even when their times are equal.
        events.append((op.invoke_time, op.index, 0, {**base, "type": "invoke", "value": op.value,
                                                       "time": op.invoke_time}))
        if op.completion != "info":
            events.append((op.complete_time, op.index, 1, {**base, "type": op.completion, "value": op.result,
                                                           "time": op.complete_time}))
    for note in history.notes:
        events.append((note.time, -1, 0, {"process": note.process, "type": "info", "f": note.f,
                                          "value": note.value, "time": note.time}))
    for *_, event in sorted(events, key=lambda e: e[:3]):
        target.write(json.dumps(event) + "\n")

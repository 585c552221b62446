"""Reading and writing Jepsen-style JSON lines histories."""

from __future__ import annotations

import gzip
import io
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from keel.conformance.checkers import History, dump_jsonl, load_jsonl, parse_events
from keel.errors import ConfigError

from .histories import executed

EVENTS = [
    {"process": 3, "type": "invoke", "f": "cas", "key": "k1", "value": [4, 7], "time": 12.5031},
    {"process": 4, "type": "invoke", "f": "read", "key": "k1", "value": None, "time": 12.504},
    {"process": "nemesis", "type": "info", "f": "kill-leader", "value": "n2", "time": 12.505},
    {"process": 3, "type": "ok", "f": "cas", "key": "k1", "value": [4, 7], "time": 12.5102},
    {"process": 4, "type": "ok", "f": "read", "key": "k1", "value": 7, "time": 12.52},
    {"process": 3, "type": "invoke", "f": "write", "key": "k1", "value": 8, "time": 13.0},
    {"process": 3, "type": "info", "f": "write", "key": "k1", "value": 8, "time": 14.0},
    {"process": 3, "type": "invoke", "f": "delete", "key": "k1", "value": None, "time": 15.0},
    {"process": 4, "type": "invoke", "f": "write", "key": "k2", "value": 1, "time": 15.5},
    {"process": 4, "type": "fail", "f": "write", "key": "k2", "value": 1, "time": 15.6},
]
TEXT = "".join(json.dumps(event) + "\n" for event in EVENTS)


def outline(history: History) -> list[tuple[object, ...]]:
    return [(op.process, op.f, op.key, op.value, op.completion, op.result, op.invoke_time, op.complete_time)
            for op in history.operations]


EXPECTED = [
    (3, "cas", "k1", (4, 7), "ok", (4, 7), 12.5031, 12.5102),
    (4, "read", "k1", None, "ok", 7, 12.504, 12.52),
    (3, "write", "k1", 8, "info", 8, 13.0, math.inf),
    (3, "delete", "k1", None, "info", None, 15.0, math.inf),  # never completed
    (4, "write", "k2", 1, "fail", 1, 15.5, 15.6),
]


def test_events_pair_up_by_process_and_a_missing_completion_is_indeterminate():
    history = parse_events(TEXT.splitlines())
    assert outline(history) == EXPECTED
    assert [(n.process, n.f, n.value, n.time) for n in history.notes] == [("nemesis", "kill-leader", "n2", 12.505)]


def test_a_process_invoking_again_leaves_its_earlier_operation_indeterminate():
    lines = [json.dumps({"process": 1, "type": "invoke", "f": "write", "key": "k", "value": v, "time": float(v)})
             for v in (1, 2)]
    first, second = parse_events(lines).operations
    assert (first.completion, first.complete_time, second.completion) == ("info", math.inf, "info")


@pytest.mark.parametrize("compress", [False, True])
def test_load_reads_plain_and_gzipped_files_by_path_or_file_object(tmp_path: Path, compress: bool):
    data = gzip.compress(TEXT.encode()) if compress else TEXT.encode()
    path = tmp_path / ("history.jsonl.gz" if compress else "history.jsonl")
    path.write_bytes(data)
    assert outline(load_jsonl(path)) == EXPECTED
    assert outline(load_jsonl(str(path))) == EXPECTED
    assert outline(load_jsonl(io.BytesIO(data))) == EXPECTED
    with path.open("rb") as raw:
        assert outline(load_jsonl(raw)) == EXPECTED


def test_load_reads_a_text_stream():
    assert outline(load_jsonl(io.StringIO(TEXT))) == EXPECTED


@pytest.mark.parametrize(("line", "message"), [
    ('{"process": 1, "type": "ok", "f": "read", "key": "k", "value": 1, "time": 1.0}',
     "line 2: ok from process 1: it has no operation open"),
    ('{"process": 9, "type": "invoke", "f": "read", "key": "k", "time": "soon"}',
     "line 2: time 'soon': a finite number of seconds"),
    ('{"process": 9, "type": "begin", "f": "read", "key": "k", "time": 2.0}',
     "line 2: type 'begin': one of invoke, ok, fail, info"),
    ('{"process": 9, "type": "invoke", "f": "read", "key": [1], "time": 2.0}',
     r"line 2: key \[1\]: a string, number or null"),
    ('[1, 2]', r"line 2: '\[1, 2\]': a JSON object per line"),
    ('{"process": 9,', "line 2: .*: not JSON"),
    ('{"process": 9, "type": "invoke", "f": "read", "key": "k", "time": 0.5}',
     "line 2: time 0.5: before the previous invocation"),
    ('{"process": "p9", "type": "invoke", "f": "read", "key": "k", "time": 2.0}',
     "line 2: process 'p9' on key 'k': client processes are integers"),
])
def test_a_malformed_line_is_a_config_error_naming_it(line: str, message: str):
    first = '{"process": 0, "type": "invoke", "f": "read", "key": "k", "time": 1.0}'
    with pytest.raises(ConfigError, match=f"^history h.jsonl {message}"):
        parse_events([first, line], name="h.jsonl")


def test_a_completion_must_match_its_invocation_and_follow_it():
    invoke = '{"process": 0, "type": "invoke", "f": "read", "key": "k", "time": 3.0}'
    other = '{"process": 0, "type": "ok", "f": "write", "key": "k", "value": 1, "time": 4.0}'
    early = '{"process": 0, "type": "ok", "f": "read", "key": "k", "value": 1, "time": 2.5}'
    with pytest.raises(ConfigError, match="line 2: ok of write 'k': process 0 invoked read 'k'"):
        parse_events([invoke, other])
    with pytest.raises(ConfigError, match="line 2: time 2.5: before its invocation at 3.0"):
        parse_events([invoke, early])


def test_an_unreadable_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="history missing.jsonl: cannot be read"):
        load_jsonl(tmp_path / "missing.jsonl")
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(gzip.compress(TEXT.encode())[:40])
    with pytest.raises(ConfigError, match="history broken.jsonl.gz: cannot be read"):
        load_jsonl(broken)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recorded=executed())
def test_dump_then_load_gives_the_same_operations(recorded: History):
    recorded.note("nemesis", "partition", ["n1", "n2"], time=3.0)
    out = io.StringIO()
    dump_jsonl(recorded, out)
    loaded = load_jsonl(io.StringIO(out.getvalue()))
    assert loaded.operations == recorded.operations
    assert loaded.notes == recorded.notes

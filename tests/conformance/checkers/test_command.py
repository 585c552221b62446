"""`python -m keel.conformance.checkers FILE` and the function behind it."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from keel.conformance.checkers.command import check_history_file, main
from keel.errors import ConfigError

COMMAND_TIMEOUT_S = 60.0  # seconds; generous for a loaded machine


def write_history(path: Path, read_back: int) -> Path:
    events = [
        {"process": 0, "type": "invoke", "f": "write", "key": "k", "value": 1, "time": 0.0},
        {"process": 0, "type": "ok", "f": "write", "key": "k", "value": 1, "time": 0.1},
        {"process": 1, "type": "invoke", "f": "read", "key": "k", "value": None, "time": 0.2},
        {"process": 1, "type": "ok", "f": "read", "key": "k", "value": read_back, "time": 0.3},
    ]
    path.write_bytes(gzip.compress("".join(json.dumps(e) + "\n" for e in events).encode()))
    return path


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "keel.conformance.checkers", *args], capture_output=True,
                          text=True, timeout=COMMAND_TIMEOUT_S, stdin=subprocess.DEVNULL)


def test_the_module_prints_the_verdict_and_exits_by_it(tmp_path: Path):
    good = run_module(str(write_history(tmp_path / "good.jsonl.gz", 1)))
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("linearizable: 1 key, 2 operations")
    bad = run_module(str(write_history(tmp_path / "bad.jsonl.gz", 2)), "--keys")
    assert bad.returncode == 1, bad.stderr
    assert bad.stdout.startswith("not linearizable: key 'k'") and "  k: NOT linearizable" in bad.stdout


def test_a_missing_file_is_one_line_on_stderr_and_exit_2(tmp_path: Path):
    result = run_module(str(tmp_path / "nothing.jsonl"))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("config error: history nothing.jsonl: cannot be read")
    assert result.stderr.count("\n") == 1


def test_running_out_of_budget_says_unknown_and_fails(tmp_path: Path):
    out = io.StringIO()
    assert main([str(write_history(tmp_path / "h.jsonl.gz", 1)), "--max-steps", "1"], out) == 1
    assert out.getvalue().startswith("linearizability unknown")


def test_an_operation_the_model_does_not_know_is_a_config_error(tmp_path: Path):
    path = tmp_path / "h.jsonl"
    path.write_text('{"process": 0, "type": "invoke", "f": "incr", "key": "k", "value": 1, "time": 0.0}\n')
    with pytest.raises(ConfigError, match="history h.jsonl: operation 0 by process 0: f 'incr'"):
        check_history_file(path)

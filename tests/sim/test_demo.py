"""The heartbeat demo and `python -m keel.sim`."""

from __future__ import annotations

import pytest

from keel.sim import run_demo
from keel.sim.__main__ import main


def test_demo_is_a_function_of_its_seed(seed):
    first = run_demo(seed, duration=2.0)
    assert first == run_demo(seed, duration=2.0)
    assert first.trace_hash != run_demo(seed + 1, duration=2.0).trace_hash


def test_demo_under_crashes_never_reuses_a_heartbeat_number(seed):
    run = run_demo(seed, nodes=3, duration=3.0, schedule="crash-each")
    assert dict(run.counts)["crash"] == 3


def test_demo_refuses_an_unknown_schedule():
    with pytest.raises(ValueError, match="schedule 'storm' is unknown"):
        run_demo(0, schedule="storm")


def test_command_line_prints_the_schedule_and_trace_hash(capsys, seed):
    assert main(["--seed", str(seed), "--duration", "1", "--schedule", "split"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"seed {seed}, schedule split:\n")
    assert "Partition(groups=" in out
    assert out.splitlines()[-1] == f"trace {run_demo(seed, duration=1.0, schedule='split').trace_hash}"

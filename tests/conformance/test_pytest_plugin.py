"""The seed fixture: a failing seeded test prints the one command that replays it."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

SEEDED = '''
import pytest

@pytest.mark.seeds(20)
def test_fails_on_some_seeds(seed):
    assert seed % 7 != 3, f"seed {seed} is unlucky"

def test_one_derived_seed(seed):
    assert isinstance(seed, int)
'''


def pytest_in(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=folder, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )


def test_a_failing_seed_prints_a_replay_command_that_fails_the_same_way(tmp_path: Path) -> None:
    (tmp_path / "test_seeded.py").write_text(SEEDED)
    result = pytest_in(tmp_path)
    assert result.returncode == 1
    assert "3 failed, 18 passed" in result.stdout  # seeds 3, 10 and 17 of 0..19
    replays = re.findall(r"^replay: (.+)$", result.stdout, re.M)
    assert replays == ["pytest test_seeded.py::test_fails_on_some_seeds --seed=3",
                       "pytest test_seeded.py::test_fails_on_some_seeds --seed=10",
                       "pytest test_seeded.py::test_fails_on_some_seeds --seed=17"]

    again = pytest_in(tmp_path, *shlex.split(replays[1])[1:])
    assert again.returncode == 1
    assert "1 failed" in again.stdout and "seed 10 is unlucky" in again.stdout


def test_seeds_option_changes_how_many_seeds_run(tmp_path: Path) -> None:
    (tmp_path / "test_seeded.py").write_text(SEEDED)
    result = pytest_in(tmp_path, "--seeds=3", "-k", "fails_on_some_seeds")
    assert result.returncode == 0
    assert "3 passed" in result.stdout


def test_an_unmarked_seeded_test_gets_one_stable_seed(tmp_path: Path) -> None:
    (tmp_path / "test_seeded.py").write_text(SEEDED)
    runs = [pytest_in(tmp_path, "--collect-only", "-k", "derived").stdout for _ in range(2)]
    ids = [re.findall(r"test_one_derived_seed\[\d+\]", run) for run in runs]  # not the summary: it has a duration
    assert len(ids[0]) == 1
    assert ids[0] == ids[1]

"""Running `keel` as a user does: a separate process, its output and exit status."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.client.cluster import RunningCluster

COMMAND_TIMEOUT_S = 60.0  # seconds; a CLI command that takes longer is hung


def run_keel(*args: str, cwd: Path | None = None, timeout: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keel", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def keel() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_keel


def assert_one_line_error(result: subprocess.CompletedProcess[str], *, status: int, words: str) -> None:
    """The user's mistake is explained in one line on stderr, without a traceback."""
    assert result.returncode == status, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert words in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


@pytest.fixture(scope="package")
def core_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """One real three-node core for the client commands' tests; each test keeps to keys of its own."""
    running = RunningCluster(tmp_path_factory.mktemp("keel-cli") / "cluster")
    try:
        running.wait_for_leader()
        yield running
    finally:
        running.stop()

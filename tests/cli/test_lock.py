"""`keel lock NAME -- COMMAND` against a real core."""

from __future__ import annotations

from tests.cli.conftest import assert_one_line_error, run_keel
from tests.client.cluster import RunningCluster


def test_lock_runs_the_command_with_the_token_and_exits_with_its_status(core_cluster: RunningCluster) -> None:
    cluster = str(core_cluster.cluster_file)
    first = run_keel("lock", "cli-lock", "--cluster", cluster, "--", "sh", "-c", 'echo "$KEEL_LOCK_TOKEN"; exit 3')
    assert first.returncode == 3, first.stderr
    second = run_keel("lock", "--cluster", cluster, "cli-lock", "--", "sh", "-c", 'echo "$KEEL_LOCK_TOKEN"')
    assert second.returncode == 0, second.stderr
    assert int(second.stdout) > int(first.stdout)


def test_lock_explains_a_missing_or_unknown_command(core_cluster: RunningCluster) -> None:
    cluster = str(core_cluster.cluster_file)
    assert_one_line_error(run_keel("lock", "cli-lock", "--cluster", cluster), status=2, words="COMMAND")
    result = run_keel("lock", "cli-lock", "--cluster", cluster, "--", "no-such-command-anywhere")
    assert_one_line_error(result, status=127, words="command not found")


def test_lock_gives_up_after_wait_while_another_holds_it(core_cluster: RunningCluster) -> None:
    cluster = str(core_cluster.cluster_file)
    inner = f"keel lock held-lock --cluster {cluster} --wait 1 -- true"
    # The outer command holds the lock while the inner one tries to take it.
    outer = run_keel("lock", "held-lock", "--cluster", cluster, "--", "sh", "-c", f"{_python()} -m {inner}")
    assert outer.returncode == 1, outer.stderr
    assert "held-lock: not acquired within 1 s" in outer.stderr
    assert "Traceback" not in outer.stderr


def _python() -> str:
    import sys  # noqa: PLC0415

    return sys.executable

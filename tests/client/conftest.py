"""One real cluster shared by the client's end-to-end tests; tests keep to keys of their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.client.cluster import RunningCluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    running = RunningCluster(tmp_path_factory.mktemp("keel") / "cluster")
    try:
        running.wait_for_leader()
        yield running
    finally:
        running.stop()

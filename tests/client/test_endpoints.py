"""Endpoints from strings, addresses and cluster files; mistakes named in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.address import Address
from keel.client import Endpoint, endpoints_from_cluster, parse_endpoints
from keel.errors import ConfigError
from keel.local import ClusterFile, ClusterNode


def test_endpoints_parse_from_strings_commas_and_addresses_once_each() -> None:
    a, b = Address("127.0.0.1", 7001), Address("127.0.0.1", 7002)
    assert parse_endpoints("127.0.0.1:7001, 127.0.0.1:7002") == (Endpoint(a), Endpoint(b))
    assert parse_endpoints(["127.0.0.1:7001", a, Endpoint(b, "c2")]) == (Endpoint(a), Endpoint(b, "c2"))


@pytest.mark.parametrize("bad", ["nonsense", "127.0.0.1:99999", "", [1234]])
def test_bad_endpoints_are_a_config_error_naming_the_field(bad: object) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_endpoints(bad, field="--endpoints")  # type: ignore[arg-type]
    assert raised.value.path == "--endpoints"


def _node(node_id: str, roles: tuple[str, ...], port: int) -> ClusterNode:
    return ClusterNode(id=node_id, roles=roles, pid=None, peer_address=Address("127.0.0.1", port),
                       client_address=Address("127.0.0.1", port + 1), config="", log="")


def test_a_cluster_file_gives_its_core_nodes_with_their_ids(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    ClusterFile(transport="tcp", nodes=(_node("c1", ("core",), 7000), _node("d1", ("data",), 7100))).write(path)
    assert endpoints_from_cluster(path) == (Endpoint(Address("127.0.0.1", 7001), "c1"),)


def test_a_missing_cluster_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        endpoints_from_cluster(tmp_path / "absent.json")

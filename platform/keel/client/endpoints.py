"""Where a client finds the core: `host:port` strings, `Address`es, or a `cluster.json`."""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike
from pathlib import Path

import attrs

from keel.address import Address
from keel.errors import ConfigError
from keel.local import ClusterFile

__all__ = ["Endpoint", "EndpointLike", "endpoints_from_cluster", "parse_endpoints"]

CORE_ROLE = "core"  # the role of the nodes that serve the core's client protocol


@attrs.frozen
class Endpoint:
    """A core node's client address, and its node id when known.

    A `NotLeader` hint names a node id; knowing the ids up front (a cluster
    file has them) saves asking every node who it is before following one.
    """

    address: Address
    node_id: str | None = None

    def __str__(self) -> str:
        return str(self.address) if self.node_id is None else f"{self.node_id}@{self.address}"


EndpointLike = str | Address | Endpoint


def parse_endpoints(endpoints: str | Iterable[EndpointLike], *, field: str = "endpoints") -> tuple[Endpoint, ...]:
    """The endpoints a client was given, in order, each once.

    Args:
        endpoints: `Endpoint`s, `Address`es or `host:port` strings; one string
            may also hold several separated by commas (`"h1:7000,h2:7000"`).
        field: how the caller names the argument in errors (`--endpoints`).

    Raises:
        ConfigError: naming `field`, for an entry that is not `host:port` or
            for no endpoints at all.
    """
    items = endpoints.split(",") if isinstance(endpoints, str) else list(endpoints)
    found: list[Endpoint] = []
    for item in items:
        if isinstance(item, Endpoint):
            endpoint = item
        elif isinstance(item, Address):
            endpoint = Endpoint(item)
        elif isinstance(item, str):
            try:
                endpoint = Endpoint(Address.parse(item.strip()))
            except ValueError as exc:
                raise ConfigError(field, str(exc)) from None
        else:
            raise ConfigError(field, f"{item!r} is not host:port")
        if all(e.address != endpoint.address for e in found):
            found.append(endpoint)
    if not found:
        raise ConfigError(field, "no endpoints given (expected host:port,…)")
    return tuple(found)


def endpoints_from_cluster(path: str | PathLike[str], *, field: str = "--cluster") -> tuple[Endpoint, ...]:
    """The core nodes of the cluster file `keel up` wrote, with their node ids.

    Raises:
        ConfigError: naming `field`, when the file is missing or malformed or
            lists no core node.
    """
    cluster = ClusterFile.read(Path(path), field=field)
    found = tuple(Endpoint(n.client_address, n.id) for n in cluster.nodes if CORE_ROLE in n.roles)
    if not found:
        raise ConfigError(field, f"{path}: lists no core node")
    return found

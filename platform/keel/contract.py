"""The records that cross the plugin contract.

A plugin answers the registration hooks of `keel.hookspecs` with these
records: a factory per consensus engine, store or transport it provides,
each under the short name a config file uses (`raft`, `lww`, `tcp`). The
observation hooks receive `NodeInfo`, a read-only description of the node, so
a plugin can watch a node without touching it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import attrs

from keel.address import Address

__all__ = ["ConsensusPlugin", "Kind", "NodeInfo", "StorePlugin", "TransportPlugin"]


class Kind(enum.Enum):
    """What a plugin provides; the values are what `keel plugins` prints."""

    CONSENSUS = "consensus"
    STORE = "store"
    TRANSPORT = "transport"


def _name(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not (isinstance(value, str) and value and value.replace("_", "").replace("-", "").isalnum()):
        raise ValueError(f"plugin {attribute.name} {value!r} must be a short word ([A-Za-z0-9_-]+)")


@attrs.frozen(kw_only=True)
class TransportPlugin:
    """A transport: how nodes exchange messages and clients reach nodes.

    `create(settings: keel.transport.TransportSettings) -> Transport` builds
    one node's endpoint; `connect(address, settings: ClientSettings)` is an
    async function returning a `TransportClient` connected to a node's client
    address. `options`, if given, is a `kw_only` attrs class built from the
    config table `[transport.options]`; its validators' messages reach the
    operator prefixed with the field path.
    """

    kind = Kind.TRANSPORT
    name: str = attrs.field(validator=_name)
    version: str
    create: Callable[..., Any]
    connect: Callable[..., Any]
    options: type | None = None
    summary: str = ""


@attrs.frozen(kw_only=True)
class ConsensusPlugin:
    """A consensus engine: `create(settings, recovered, rng)` builds a sans-I/O engine (`keel.consensus.EngineFactory`)."""

    kind = Kind.CONSENSUS
    name: str = attrs.field(validator=_name)
    version: str
    create: Callable[..., Any]
    options: type | None = None
    summary: str = ""


@attrs.frozen(kw_only=True)
class StorePlugin:
    """A store: the semantics of data records and how replicas merge."""

    kind = Kind.STORE
    name: str = attrs.field(validator=_name)
    version: str
    create: Callable[..., Any]
    options: type | None = None
    summary: str = ""


Registration = TransportPlugin | ConsensusPlugin | StorePlugin


@attrs.frozen(kw_only=True)
class NodeInfo:
    """What observation hooks may know about the node they watch."""

    node_id: str
    roles: frozenset[str]
    peer_address: Address
    client_address: Address
    data_dir: str

"""The nodes of a local cluster and their config files.

`keel up` runs every node on 127.0.0.1 with ports the OS says are free, and
keeps each node's files under `DIR/nodes/<id>/`: `node.toml`, `data/` and
`node.log`. Running `keel up` again on the same DIR reuses those configs, so
ports and data survive a restart of the whole cluster.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import attrs

from keel import config as keel_config
from keel.address import Address
from keel.errors import ConfigError

__all__ = ["LOCALHOST", "NodePlan", "free_ports", "plan", "write_config"]

LOCALHOST = "127.0.0.1"


@attrs.frozen(kw_only=True)
class NodePlan:
    """One node of a local cluster."""

    id: str
    roles: tuple[str, ...]
    peer: Address
    client: Address
    dir: Path

    @property
    def config_path(self) -> Path:
        return self.dir / "node.toml"

    @property
    def log_path(self) -> Path:
        return self.dir / "node.log"


def free_ports(count: int, host: str = LOCALHOST) -> list[int]:
    """`count` distinct ports that were free a moment ago.

    All sockets stay open until every port is picked, so no port is handed
    out twice; another process may still take one before a node binds it,
    in which case that node fails to start and `keel up` says so.
    """
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((host, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def plan(root: Path, *, core: int, data: int, base_port: int | None = None) -> list[NodePlan]:
    """The nodes of a cluster of `core` core and `data` data nodes under `root`.

    Nodes that already have a config under `root` keep its addresses.

    Raises:
        ConfigError: `root` holds a cluster of another shape, or a config
            there is broken.
    """
    ids = [f"c{i}" for i in range(1, core + 1)] + [f"d{i}" for i in range(1, data + 1)]
    nodes_dir = root / "nodes"
    existing = sorted(p.name for p in nodes_dir.iterdir() if (p / "node.toml").exists()) if nodes_dir.is_dir() else []
    if existing and existing != sorted(ids):
        raise ConfigError(
            "--core/--data",
            f"{root} holds a cluster of nodes {', '.join(existing)}; ask for the same shape, use another --dir, or pass --fresh",
        )
    if existing:
        plans = []
        for node_id in ids:
            cfg = keel_config.load(nodes_dir / node_id / "node.toml")
            plans.append(NodePlan(id=node_id, roles=tuple(sorted(cfg.node.roles)), peer=cfg.network.listen_peer,
                                  client=cfg.network.listen_client, dir=nodes_dir / node_id))
        return plans
    if base_port is not None:
        ports = list(range(base_port, base_port + 2 * len(ids)))
    else:
        ports = free_ports(2 * len(ids))
    return [
        NodePlan(
            id=node_id,
            roles=("core",) if node_id.startswith("c") else ("data",),
            peer=Address(LOCALHOST, ports[2 * i]),
            client=Address(LOCALHOST, ports[2 * i + 1]),
            dir=nodes_dir / node_id,
        )
        for i, node_id in enumerate(ids)
    ]


def _toml(value: object) -> str:
    # JSON strings and arrays of them are valid TOML for the values we write.
    return json.dumps(value)


def write_config(node: NodePlan, cluster: list[NodePlan], *, transport: str, consensus: str = "raft") -> Path:
    """Write `node`'s config file (unless it exists) and return its path."""
    path = node.config_path
    if path.exists():
        return path
    node.dir.mkdir(parents=True, exist_ok=True)
    peers = [f"{n.id}={n.peer}" for n in cluster if "core" in n.roles]
    clients = [f"{n.id}={n.client}" for n in cluster if "core" in n.roles]
    text = "\n".join([
        f"# keel node {node.id}, written by `keel up`; edit freely, `keel up` keeps it.",
        "[node]",
        f"id = {_toml(node.id)}",
        f"roles = {_toml(list(node.roles))}",
        'data_dir = "data"',
        "",
        "[network]",
        f"listen_peer = {_toml(str(node.peer))}",
        f"listen_client = {_toml(str(node.client))}",
        "",
        "[core]",
        f"peers = {_toml(peers)}",
        f"clients = {_toml(clients)}",
        "",
        "[transport]",
        f"plugin = {_toml(transport)}",
        "",
        *(["[consensus]", f"plugin = {_toml(consensus)}", ""] if "core" in node.roles else []),
    ])
    path.write_text(text, encoding="utf-8")
    return path

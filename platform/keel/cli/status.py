"""`keel status`: ask every node of a cluster how it is."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import attrs
import trio
from rich.console import Group, RenderableType

from keel import plugins
from keel.cli.output import make_table, print_json, print_rich
from keel.contract import Kind
from keel.core.api import CoreStatusReply
from keel.errors import Unavailable
from keel.local import ClusterFile, ClusterNode
from keel.status import StatusReply, fetch_status
from keel.transport import ClientSettings

__all__ = ["DEFAULT_CLUSTER", "NodeRow", "add_parser", "collect", "render"]

DEFAULT_CLUSTER = ".keel/cluster.json"
STATUS_TIMEOUT_S = 2.0  # seconds a node gets to answer; a loaded node answers in milliseconds


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "status",
        help="show every node of a cluster",
        description="Ask every node of a cluster for its status. Exits 1 if any node does not answer.",
    )
    parser.add_argument("--cluster", default=DEFAULT_CLUSTER, metavar="FILE",
                        help=f"the cluster.json that `keel up` wrote (default: {DEFAULT_CLUSTER})")
    parser.add_argument("--timeout", type=float, default=STATUS_TIMEOUT_S, metavar="SECONDS",
                        help=f"how long each node gets to answer (default: {STATUS_TIMEOUT_S:g})")
    parser.add_argument("--json", action="store_true", help="print a JSON array, one object per node")
    parser.set_defaults(run=run)


@attrs.frozen
class NodeRow:
    """One node: what the cluster file says and what the node answered."""

    node: ClusterNode
    reply: StatusReply | None
    error: str | None

    @property
    def state(self) -> str:
        if self.reply is not None:
            return "up"
        if self.node.exit_status is not None:
            return f"exited ({self.node.exit_status})"
        return "down"

    def to_json(self) -> dict[str, Any]:
        row = self.node.to_json() | {"state": self.state, "error": self.error}
        if self.reply is not None:
            row |= {
                "pid": self.reply.pid,
                "version": self.reply.version,
                "uptime": round(self.reply.uptime, 3),
                "transport": self.reply.transport,
                "peers": [
                    {"id": p.id, "connected": p.connected, "alive": p.alive,
                     "last_heard": None if p.last_heard is None else round(p.last_heard, 3),
                     "sent": p.sent, "dropped": p.dropped, "received": p.received}
                    for p in self.reply.peers
                ],
                "core": _core_json(self.reply.core),
                "data": None if self.reply.data is None else {
                    "epoch": self.reply.data.epoch, "partitions": list(self.reply.data.partitions),
                    "records": self.reply.data.records, "buckets": list(self.reply.data.buckets),
                    "members": list(self.reply.data.members),
                },
            }
        return row


def _core_json(core: CoreStatusReply | None) -> dict[str, Any] | None:
    if core is None:
        return None
    return {
        "consensus": core.consensus,
        "role": core.role,
        "leader": core.leader,
        "term": core.term,
        "commit_index": core.commit_index,
        "applied_index": core.applied_index,
        "last_index": core.last_index,
        "revision": core.revision,
        "voters": list(core.voters),
        "learners": list(core.learners),
        "log_bytes": core.log_bytes,
    }


def _size(count: int) -> str:
    """Bytes as people read them: 812 B, 3.4 KiB, 12.0 MiB."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{count} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


async def collect(cluster: ClusterFile, connect: Any, settings: ClientSettings, *, timeout: float) -> list[NodeRow]:
    """Ask every node of `cluster` at once; a node that does not answer gets an error row."""
    rows: dict[str, NodeRow] = {}

    async def ask(node: ClusterNode) -> None:
        try:
            rows[node.id] = NodeRow(node, await fetch_status(connect, node.client_address, settings, timeout=timeout), None)
        except Unavailable as exc:
            rows[node.id] = NodeRow(node, None, str(exc))

    async with trio.open_nursery() as nursery:
        for node in cluster.nodes:
            nursery.start_soon(ask, node)
    return [rows[node.id] for node in cluster.nodes]


def _peers(reply: StatusReply | None) -> str:
    if reply is None or not reply.peers:
        return ""
    alive = [p.id for p in reply.peers if p.alive]
    return f"{len(alive)}/{len(reply.peers)} heard"


def render(rows: list[NodeRow], *, title: str | None = None) -> RenderableType:
    """The status tables people read: every node, then the consensus state of the core nodes that answered."""
    nodes = make_table(
        ["node", "roles", "state", "pid", "peer address", "client address", "uptime", "peers"],
        [
            [
                row.node.id,
                ",".join(row.node.roles),
                row.state,
                row.reply.pid if row.reply else row.node.pid,
                row.node.peer_address,
                row.node.client_address,
                f"{row.reply.uptime:.0f}s" if row.reply else "",
                _peers(row.reply),
            ]
            for row in rows
        ],
        title=title,
    )
    tables = [nodes]
    cores = [(row.node.id, row.reply.core) for row in rows if row.reply is not None and row.reply.core is not None]
    if cores:
        tables.append(make_table(
            ["node", "role", "leader", "term", "commit", "applied", "log"],
            [[node_id, c.role, c.leader or "none", c.term, c.commit_index, c.applied_index, _size(c.log_bytes)]
             for node_id, c in cores],
        ))
    datas = [(row.node.id, row.reply.data) for row in rows if row.reply is not None and row.reply.data is not None]
    if datas:
        tables.append(make_table(
            ["data node", "map epoch", "partitions", "records", "buckets"],
            [[node_id, d.epoch or "none", len(d.partitions), d.records, ",".join(d.buckets)] for node_id, d in datas],
        ))
    return tables[0] if len(tables) == 1 else Group(*tables)


def run(args: argparse.Namespace) -> int:
    path = Path(args.cluster)
    cluster = ClusterFile.read(path)
    transport = plugins.load().get(Kind.TRANSPORT, cluster.transport, field=f"{path}: transport")
    settings = ClientSettings(connect_timeout=args.timeout)
    rows = trio.run(lambda: collect(cluster, transport.connect, settings, timeout=args.timeout))
    if args.json:
        print_json([row.to_json() for row in rows])
    else:
        print_rich(render(rows, title=f"keel cluster {path}"))
    return 0 if all(row.reply is not None for row in rows) else 1

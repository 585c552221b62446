"""`keel up`: a local cluster of separate node processes on 127.0.0.1.

It writes each node's config under DIR, starts the nodes, waits until every
one answers, writes `DIR/cluster.json`, and then shows a live status view
(on a terminal) until Ctrl-C or SIGTERM, when it stops them all. A node that
dies is reported and left dead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
from pathlib import Path

import attrs
import trio
from rich.console import Console
from rich.live import Live

from keel import config as keel_config
from keel import plugins
from keel.cli.status import STATUS_TIMEOUT_S, collect, render
from keel.contract import Kind
from keel.data.bucket import DEFAULT_BUCKET
from keel.errors import ConfigError, KeelError
from keel.local import ClusterFile, ClusterNode, NodePlan, Supervisor, plan, write_config
from keel.transport import ClientSettings

__all__ = ["add_parser"]

DEFAULT_DIR = ".keel"
READY_TIMEOUT_S = 30.0  # seconds for every node to answer its first status request
READY_POLL_S = 0.2  # seconds between readiness polls
VIEW_REFRESH_S = 1.0  # seconds between refreshes of the live view
LOG_TAIL_LINES = 8  # lines of a dead node's log shown to the operator
MAX_NODES = 50  # per kind; a local cluster past this is a mistake, not a plan


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "up",
        help="run a local cluster of separate node processes",
        description=(
            "Start a local cluster on 127.0.0.1: each node a separate process, its config, data and log under "
            "DIR/nodes/<id>/, and DIR/cluster.json describing them. Shows a live status view on a terminal; "
            "Ctrl-C or SIGTERM stops every node. Running it again on the same DIR reuses the configs and data."
        ),
    )
    parser.add_argument("--dir", default=DEFAULT_DIR, help=f"where the cluster's files live (default: {DEFAULT_DIR})")
    parser.add_argument("--core", type=int, default=3, metavar="N", help="core nodes (default: 3)")
    parser.add_argument("--data", type=int, default=3, metavar="N", help="data nodes (default: 3)")
    parser.add_argument("--transport", default="tcp", metavar="NAME", help="transport plugin (default: tcp)")
    parser.add_argument("--consensus", default="raft", metavar="NAME",
                        help="consensus plugin of the core nodes, for new configs (default: raft)")
    parser.add_argument("--base-port", type=int, metavar="PORT",
                        help="use PORT, PORT+1, … instead of free ports the OS picks")
    parser.add_argument("--fresh", action="store_true", help="delete DIR's node configs and data first")
    parser.add_argument("--no-view", action="store_true", help="no live view, even on a terminal")
    parser.add_argument("--ready-timeout", type=float, default=READY_TIMEOUT_S, metavar="SECONDS",
                        help=f"how long nodes get to start answering (default: {READY_TIMEOUT_S:g})")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.core <= MAX_NODES:
        raise ConfigError("--core", f"{args.core} is outside 1…{MAX_NODES}")
    if not 0 <= args.data <= MAX_NODES:
        raise ConfigError("--data", f"{args.data} is outside 0…{MAX_NODES}")
    if args.base_port is not None and not 1024 <= args.base_port <= 65535 - 2 * (args.core + args.data):
        raise ConfigError("--base-port", f"{args.base_port} leaves no room for {2 * (args.core + args.data)} ports above 1024")
    if args.ready_timeout <= 0:
        raise ConfigError("--ready-timeout", f"{args.ready_timeout} is not above 0")
    return trio.run(_up, args)


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive, not ours to judge
        return True
    try:  # a killed node whose parent died too lingers as a zombie until someone reaps it: dead
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return True


def _refuse_running(path: Path) -> None:
    if not path.exists():
        return
    try:
        cluster = ClusterFile.read(path, field="--dir")
    except ConfigError:
        return  # unreadable leftovers are replaced below
    live = [f"{n.id} (pid {n.pid})" for n in cluster.nodes if n.exit_status is None and _alive(n.pid)]
    if live:
        raise ConfigError("--dir", f"{path.parent}: a cluster is already running there: {', '.join(live)}; stop it first")


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


@attrs.define
class _Cluster:
    """The running cluster as `keel up` tracks it."""

    path: Path
    transport: str
    nodes: list[NodePlan]
    supervisor: Supervisor | None = None
    exits: dict[str, int] = attrs.Factory(dict)
    all_dead: trio.Event = attrs.Factory(trio.Event)

    def file(self) -> ClusterFile:
        procs = self.supervisor.processes if self.supervisor else {}
        return ClusterFile(
            transport=self.transport,
            nodes=tuple(
                ClusterNode(
                    id=n.id,
                    roles=n.roles,
                    pid=procs[n.id].pid if n.id in procs else None,
                    peer_address=n.peer,
                    client_address=n.client,
                    config=str(n.config_path),
                    log=str(n.log_path),
                    exit_status=self.exits.get(n.id),
                )
                for n in self.nodes
            ),
        )

    def on_exit(self, node: NodePlan, status: int) -> None:
        self.exits[node.id] = status
        how = f"was killed by {signal.Signals(-status).name}" if status < 0 else f"exited with status {status}"
        sys.stderr.write(f"keel up: node {node.id} {how}; not restarting it. Its log: {node.log_path}\n")
        tail = _tail(node.log_path)
        if tail and status > 0:
            sys.stderr.write(tail + "\n")
        self.file().write(self.path)
        if len(self.exits) == len(self.nodes):
            self.all_dead.set()


async def _wait_ready(cluster: _Cluster, connect: object, timeout: float) -> bool:
    settings = ClientSettings(connect_timeout=STATUS_TIMEOUT_S)
    with trio.move_on_after(timeout):
        while not cluster.exits:
            rows = await collect(cluster.file(), connect, settings, timeout=STATUS_TIMEOUT_S)
            if all(row.reply is not None for row in rows):
                return True
            await trio.sleep(READY_POLL_S)
        return False
    waiting = [n.id for n in cluster.nodes if n.id not in cluster.exits]
    sys.stderr.write(f"keel up: nodes did not answer within {timeout:g} s: {', '.join(waiting)}; see their logs\n")
    for node in cluster.nodes:
        tail = _tail(node.log_path)
        if tail:
            sys.stderr.write(f"  {node.id} ({node.log_path}):\n{tail}\n")
    return False


async def _view(cluster: _Cluster, connect: object) -> None:
    settings = ClientSettings(connect_timeout=STATUS_TIMEOUT_S)
    title = f"keel cluster {cluster.path}  (Ctrl-C stops it)"
    with Live(console=Console(), auto_refresh=False, transient=False) as live:
        while True:
            rows = await collect(cluster.file(), connect, settings, timeout=STATUS_TIMEOUT_S)
            live.update(render(rows, title=title), refresh=True)
            await trio.sleep(VIEW_REFRESH_S)


async def _default_bucket(cluster_path: Path, transport: str) -> None:
    """Create the `default` LWW bucket unless the cluster has one (a kept cluster may)."""
    from keel.client import connect, endpoints_from_cluster  # noqa: PLC0415

    try:
        async with connect(endpoints_from_cluster(cluster_path), transport=transport) as client:
            if DEFAULT_BUCKET not in {b.name for b in await client.buckets()}:
                await client.create_bucket(DEFAULT_BUCKET, store="lww")
                print(f"keel up: created bucket {DEFAULT_BUCKET} (store lww, n=3 r=2 w=2)", flush=True)
    except KeelError as exc:
        sys.stderr.write(f"keel up: could not create bucket {DEFAULT_BUCKET}: {exc}\n")


async def _up(args: argparse.Namespace) -> int:
    root = Path(args.dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    cluster_path = root / "cluster.json"
    _refuse_running(cluster_path)
    if args.fresh:
        shutil.rmtree(root / "nodes", ignore_errors=True)
    nodes = plan(root, core=args.core, data=args.data, base_port=args.base_port)
    loaded = plugins.load()
    transport = loaded.get(Kind.TRANSPORT, args.transport, field="--transport")
    loaded.get(Kind.CONSENSUS, args.consensus, field="--consensus")
    for node in nodes:
        write_config(node, nodes, transport=args.transport, consensus=args.consensus)
        keel_config.load(node.config_path)  # a broken kept config fails here, naming its field
    cluster = _Cluster(path=cluster_path, transport=args.transport, nodes=nodes)
    cluster.supervisor = Supervisor(nodes, on_exit=cluster.on_exit)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(cluster.supervisor.run)
            cluster.file().write(cluster_path)
            if not await _wait_ready(cluster, transport.connect, args.ready_timeout):
                nursery.cancel_scope.cancel()
                return 1
            if args.data:
                await _default_bucket(cluster_path, args.transport)
            print(f"keel up: {len(nodes)} nodes running; cluster file {cluster_path}", flush=True)
            print(f"keel up: keel status --cluster {cluster_path}    (Ctrl-C or SIGTERM stops them)", flush=True)
            if sys.stdout.isatty() and not args.no_view:
                nursery.start_soon(_view, cluster, transport.connect)
            stop = trio.Event()

            async def on_signal() -> None:
                async for _ in signals:
                    stop.set()
                    return

            async def on_all_dead() -> None:
                await cluster.all_dead.wait()
                stop.set()

            nursery.start_soon(on_signal)
            nursery.start_soon(on_all_dead)
            await stop.wait()
            live = cluster.supervisor.running
            print(f"keel up: stopping {len(live)} nodes", flush=True)
            await cluster.supervisor.stop()
            nursery.cancel_scope.cancel()
    print("keel up: stopped", flush=True)
    return 1 if cluster.all_dead.is_set() else 0

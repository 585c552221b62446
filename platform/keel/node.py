"""The node runtime: Trio drives the transport, heartbeats, the core and requests.

`Node.run` owns every task of the node in one nursery: the transport's
`serve`, the heartbeat sender, the receive loop and, on a core node, the
`CoreRuntime` (consensus engine, durable log, state machine) and, on a data
node, the `DataRuntime` (records, replication, the core's map). A request
from a client is answered by `handle_request`; a peer message by
`_deliver`, which hands data messages to the data runtime and everything
else but heartbeats to the core.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import attrs
import trio

from keel import __version__
from keel.config import Config, build
from keel.consensus import EngineSettings, LeaderChanged, RoleChanged
from keel.contract import Kind, NodeInfo, TransportPlugin
from keel.core.api import Batch, Call, CoreStatus
from keel.core.runtime import CoreRuntime
from keel.data.api import DataCall, DataCallBatch
from keel.data.membership import MemberInfo
from keel.data.runtime import DataRuntime
from keel.errors import ConfigError, KeelError
from keel.heartbeat import Heartbeat, PeerLiveness
from keel.plugins import PluginSet
from keel.status import PeerView, StatusReply, StatusRequest
from keel.transport import BoundAddresses, ClientSettings, TlsSettings, Transport, TransportSettings

__all__ = ["DEFAULT_CONSENSUS", "Node", "Resolved", "resolve"]

log = logging.getLogger("keel.node")

DEFAULT_CONSENSUS = "raft"  # what a core node runs when its config names no consensus plugin


@attrs.frozen
class Resolved:
    """The plugins a config names, found and with their options built."""

    transport: TransportPlugin
    transport_options: Any
    consensus: Any = None
    consensus_options: Any = None
    store: Any = None
    store_options: Any = None


def _options(plugin: Any, raw: dict[str, Any], section: str) -> Any:
    if plugin.options is None:
        if raw:
            raise ConfigError(f"{section}.options", f"the {plugin.name} {plugin.kind.value} plugin takes no options")
        return None
    return build(plugin.options, raw, f"{section}.options")


def resolve(config: Config, plugins: PluginSet) -> Resolved:
    """Find every plugin `config` names and build its options.

    Raises:
        ConfigError: an unknown plugin name (listing the installed ones) or
            bad plugin options, naming the field.
    """
    found: dict[str, Any] = {}
    for section, kind in (("transport", Kind.TRANSPORT), ("consensus", Kind.CONSENSUS), ("store", Kind.STORE)):
        choice = getattr(config, section)
        name = choice.plugin
        if name is None and section == "consensus" and "core" in config.node.roles:
            name = DEFAULT_CONSENSUS
        if name is None:
            continue
        plugin = plugins.get(kind, name, field=f"{section}.plugin")
        found[section] = plugin
        found[f"{section}_options"] = _options(plugin, choice.options_table(), section)
    if "transport" not in found:
        raise ConfigError("transport.plugin", 'is required (for example "tcp")')
    return Resolved(**found)


def tls_settings(config: Config) -> TlsSettings | None:
    tls = config.network.tls
    return None if tls is None else TlsSettings(cert=tls.cert, key=tls.key, ca=tls.ca)


def client_settings(config: Config, resolved: Resolved) -> ClientSettings:
    """How a client of this config's cluster should connect."""
    return ClientSettings(
        connect_timeout=config.timeouts.connect,
        max_frame=config.network.max_frame,
        tls=tls_settings(config),
        options=resolved.transport_options,
    )


class Node:
    """One keel node: its transport, its heartbeats, its answers to clients."""

    def __init__(self, config: Config, plugins: PluginSet) -> None:
        self.config = config
        self.plugins = plugins
        self.resolved = resolve(config, plugins)
        self.transport: Transport = self.resolved.transport.create(TransportSettings(
            node_id=config.node.id,
            listen_peer=config.network.listen_peer,
            listen_client=config.network.listen_client,
            advertise_peer=config.peer_address,
            peers=config.peers(),
            max_frame=config.network.max_frame,
            connect_timeout=config.timeouts.connect,
            tls=tls_settings(config),
            options=self.resolved.transport_options,
        ))
        # Tells peers this is a new process; SystemRandom because two restarts
        # within one clock tick must still differ.
        self.incarnation = random.SystemRandom().getrandbits(63)
        self.liveness = PeerLiveness(interval=config.timeouts.heartbeat)
        self.core: CoreRuntime | None = None
        if "core" in config.node.roles:
            t = config.timeouts
            self.core = CoreRuntime(
                node_id=config.node.id,
                plugin=self.resolved.consensus,
                settings=EngineSettings(node_id=config.node.id, voters=tuple(p.id for p in config.core.peers),
                                        heartbeat=t.heartbeat, election_min=t.election_min,
                                        election_max=t.election_max, options=self.resolved.consensus_options),
                data_dir=Path(config.node.data_dir),
                transport=self.transport,
                request_timeout=t.request,
                observe=self._engine_event,
            )
        self.data: DataRuntime | None = None
        if "data" in config.node.roles:
            self.data = DataRuntime(
                node_id=config.node.id,
                stores={name: plugins.get(Kind.STORE, name, field="store") for name in plugins.names(Kind.STORE)},
                data_dir=Path(config.node.data_dir),
                transport=self.transport,
                core=self._core_client,
                core_peers=config.peers(),
                request_timeout=config.timeouts.request,
            )
        self.info: NodeInfo | None = None
        self._started_at = 0.0
        # Made here, entered in run: a stop() that comes before run() still counts.
        self._cancel = trio.CancelScope()

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled or `stop` is called; `started(BoundAddresses)` once listening."""
        with self._cancel:
            if self.core is not None:
                await self.core.open()  # a damaged log stops the node here, naming file and offset
            if self.data is not None:
                await self.data.open()  # so does a damaged or foreign record file, naming it
            async with trio.open_nursery() as nursery:
                if self.core is not None:
                    await nursery.start(self.core.run)
                bound: BoundAddresses = await nursery.start(self.transport.serve, self.handle_request)
                self._started_at = trio.current_time()
                self.info = NodeInfo(
                    node_id=self.config.node.id,
                    roles=self.config.node.roles,
                    peer_address=self.config.network.advertise_peer or bound.peer,
                    client_address=self.config.network.advertise_client or bound.client or bound.peer,
                    data_dir=self.config.node.data_dir,
                )
                if self.data is not None:
                    self.data.info = MemberInfo(self.info.peer_address, self.info.client_address,
                                                tuple(sorted(self.data.stores)))
                    await nursery.start(self.data.run)
                nursery.start_soon(self._send_heartbeats)
                nursery.start_soon(self._receive)
                log.info("node %s serving: peers on %s, clients on %s", self.info.node_id, bound.peer, bound.client)
                self._call_hook("keel_node_started", node=self.info)
                task_status.started(bound)

    def stop(self) -> None:
        """Begin a graceful stop: tell the hooks, then cancel every task."""
        if self.info is not None:
            log.info("node %s stopping", self.info.node_id)
            self._call_hook("keel_node_stopping", node=self.info)
        self._cancel.cancel()

    async def graceful_stop(self, grace: float) -> None:
        """Stop after a leader handed its leadership over (for at most `grace` seconds)."""
        if self.core is not None:
            with trio.move_on_after(grace):
                await self.core.stop()
        self.stop()

    async def handle_request(self, request: Any) -> Any:
        """Answer one client request.

        Raises:
            KeelError: the request is not one this node serves.
        """
        if isinstance(request, StatusRequest):
            return self.status()
        if isinstance(request, (Call, CoreStatus, Batch)):
            if self.core is None:
                raise KeelError(f"node {self.config.node.id} is not a core node (roles: "
                                f"{', '.join(sorted(self.config.node.roles))})")
            if isinstance(request, Batch):
                return await self.core.handle_batch(request)
            return await self.core.handle(request)
        if isinstance(request, (DataCall, DataCallBatch)):
            if self.data is None:
                raise KeelError(f"node {self.config.node.id} is not a data node (roles: "
                                f"{', '.join(sorted(self.config.node.roles))})")
            if isinstance(request, DataCallBatch):
                return await self.data.handle_batch(request)
            return await self.data.handle(request)
        raise KeelError(f"request {type(request).__name__}: not served by this node (keel {__version__})")

    def status(self) -> StatusReply:
        """This node's view of itself and its peers."""
        now = trio.current_time()
        links = {link.peer: link for link in self.transport.links()}
        seen = self.liveness.seen([peer for peer, _ in self.config.peers()], now)
        peers = []
        for row in seen:
            link = links.get(row.peer)
            peers.append(PeerView(
                id=row.peer,
                connected=bool(link and link.connected),
                alive=row.alive,
                last_heard=row.last_heard,
                sent=link.sent if link else 0,
                dropped=link.dropped if link else 0,
                received=link.received if link else 0,
            ))
        assert self.info is not None, "status is served only after the node started"
        return StatusReply(
            node_id=self.config.node.id,
            roles=tuple(sorted(self.config.node.roles)),
            pid=os.getpid(),
            version=__version__,
            uptime=now - self._started_at,
            peer_address=str(self.info.peer_address),
            client_address=str(self.info.client_address),
            transport=self.resolved.transport.name,
            peers=tuple(peers),
            core=self.core.status() if self.core is not None and self.core.server is not None else None,
            data=self.data.status() if self.data is not None and self.data.server is not None else None,
        )

    async def _send_heartbeats(self) -> None:
        beat = Heartbeat(node_id=self.config.node.id, incarnation=self.incarnation)
        configured = [peer for peer, _ in self.config.peers()]
        while True:
            # Also answer nodes that found us (data nodes know the core; the
            # core learns of them from their heartbeats), so both sides see each other.
            for peer in sorted(set(configured) | self.liveness.heard_from()):
                self.transport.send(peer, beat)
            await trio.sleep(self.config.timeouts.heartbeat)

    async def _receive(self) -> None:
        while True:
            delivery = await self.transport.receive()
            self._deliver(delivery.src, delivery.message)

    def _deliver(self, src: str, message: Any) -> None:
        if isinstance(message, Heartbeat):
            if message.node_id != src:
                log.warning("heartbeat from link %s claims to be %s; ignored", src, message.node_id)
                return
            if self.liveness.heard(message, trio.current_time()):
                log.info("peer %s restarted", src)
            return
        if self.data is not None and type(message).__module__ == "keel.data.api":
            self.data.deliver(src, message)
            return
        if self.core is not None:
            self.core.deliver(src, message)
            return
        log.warning("peer %s sent %s, which this node does not handle; ignored", src, type(message).__name__)

    def _core_client(self) -> Any:
        """A client of the core, for the data runtime: `async with node._core_client() as core`."""
        from keel.client import Endpoint, connect  # noqa: PLC0415 - only data nodes load the client

        endpoints = [Endpoint(peer.address, peer.id) for peer in self.config.core.clients]
        return connect(endpoints, transport=self.resolved.transport.name,
                       settings=client_settings(self.config, self.resolved))

    def _engine_event(self, event: Any) -> None:
        if self.info is None:
            return
        if isinstance(event, RoleChanged):
            log.info("core %s: %s in term %d", self.info.node_id, event.role, event.term)
            self._call_hook("keel_role_changed", node=self.info, role=event.role, term=event.term)
        elif isinstance(event, LeaderChanged):
            self._call_hook("keel_leader_changed", node=self.info, leader=event.leader, term=event.term)

    def _call_hook(self, name: str, **kwargs: Any) -> None:
        # Observation hooks must not take the node down: log and go on.
        try:
            getattr(self.plugins.hook, name)(**kwargs)
        except Exception:  # noqa: BLE001
            log.exception("hook %s raised; ignored", name)

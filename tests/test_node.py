"""The node runtime, in process over the memory transport, on Trio's mock clock."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest
import trio

from keel import config as keel_config
from keel import hookimpl, plugins
from keel.address import Address
from keel.contract import NodeInfo
from keel.errors import ConfigError, KeelError
from keel.heartbeat import Heartbeat
from keel.plugins import PluginSource
from keel.status import StatusReply, StatusRequest, fetch_status
from keel.transport import ClientSettings
from keel.node import Node
from keel.transport.memory import MemoryOptions, connect


def make_config(tmp_path: Path, node_id: str, ids: list[str], *, network: str, extra: str = "") -> keel_config.Config:
    index = ids.index(node_id)
    peers = ", ".join(f'"{n}=127.0.0.1:{7001 + i}"' for i, n in enumerate(ids))
    text = f"""
[node]
id = "{node_id}"
roles = ["core"]
data_dir = "{node_id}"

[network]
listen_peer = "127.0.0.1:{7001 + index}"
listen_client = "127.0.0.1:{7101 + index}"

[core]
peers = [{peers}]

[transport]
plugin = "memory"
[transport.options]
network = "{network}"
{extra}
"""
    path = tmp_path / f"{node_id}.toml"
    path.write_text(text)
    return keel_config.load(path)


class Recorder:
    """A plugin module that records the lifecycle hooks it sees."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        module = types.ModuleType("recorder")
        module.KEEL_CONTRACT = "1.0"

        @hookimpl
        def keel_node_started(node: NodeInfo) -> None:
            self.events.append(("started", node.node_id))

        @hookimpl
        def keel_node_stopping(node: NodeInfo) -> None:
            self.events.append(("stopping", node.node_id))

        module.keel_node_started = keel_node_started
        module.keel_node_stopping = keel_node_stopping
        self.module = module

    def plugin_set(self) -> plugins.PluginSet:
        return plugins.load([*plugins.default_sources(), PluginSource("recorder", "test-recorder", lambda: self.module)])


async def test_nodes_hear_each_others_heartbeats_and_report_them_in_status(tmp_path: Path, autojump_clock: Any) -> None:
    ids = ["a", "b", "c"]
    loaded = plugins.load()
    nodes = [Node(make_config(tmp_path, n, ids, network="heartbeats"), loaded) for n in ids]
    async with trio.open_nursery() as nursery:
        for node in nodes:
            await nursery.start(node.run)
        await trio.sleep(1.0)
        settings = ClientSettings(options=MemoryOptions(network="heartbeats"))
        reply = await fetch_status(connect, Address("127.0.0.1", 7101), settings, timeout=1.0)
        assert isinstance(reply, StatusReply)
        assert reply.node_id == "a"
        assert [(p.id, p.alive, p.connected) for p in reply.peers] == [("b", True, True), ("c", True, True)]
        assert all(p.received > 0 and p.sent > 0 for p in reply.peers)

        nodes[2].stop()  # c goes away; a stops hearing it
        await trio.sleep(1.0)
        reply = await fetch_status(connect, Address("127.0.0.1", 7101), settings, timeout=1.0)
        assert [(p.id, p.alive) for p in reply.peers] == [("b", True), ("c", False)]
        nursery.cancel_scope.cancel()


async def test_lifecycle_hooks_see_start_then_stop(tmp_path: Path, autojump_clock: Any) -> None:
    recorder = Recorder()
    node = Node(make_config(tmp_path, "a", ["a"], network="hooks"), recorder.plugin_set())
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        assert recorder.events == [("started", "a")]
        node.stop()
    assert recorder.events == [("started", "a"), ("stopping", "a")]


async def test_a_stop_before_run_still_stops_the_node(tmp_path: Path, autojump_clock: Any) -> None:
    node = Node(make_config(tmp_path, "a", ["a"], network="early-stop"), plugins.load())
    node.stop()
    with trio.fail_after(5):
        await node.run()


async def test_an_unserved_request_is_a_typed_error_not_a_crash(tmp_path: Path, autojump_clock: Any) -> None:
    node = Node(make_config(tmp_path, "a", ["a"], network="unserved"), plugins.load())
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        client = await connect(Address("127.0.0.1", 7101), ClientSettings(options=MemoryOptions(network="unserved")))
        with pytest.raises(KeelError, match="not served by this node"):
            await client.request(Heartbeat(node_id="z", incarnation=1), timeout=1.0)
        assert isinstance(await client.request(StatusRequest(), timeout=1.0), StatusReply)
        nursery.cancel_scope.cancel()


def test_an_unknown_plugin_option_names_its_field(tmp_path: Path) -> None:
    config = make_config(tmp_path, "a", ["a"], network="x", extra="colour = 'red'")
    with pytest.raises(ConfigError) as caught:
        Node(config, plugins.load())
    assert caught.value.path == "transport.options.colour"


def test_an_unknown_consensus_plugin_lists_the_installed_ones(tmp_path: Path) -> None:
    config = make_config(tmp_path, "a", ["a"], network="x", extra="[consensus]\nplugin = 'zab'")
    with pytest.raises(ConfigError, match=r'consensus.plugin: "zab" is not an installed consensus plugin \(installed: '):
        Node(config, plugins.load())

"""The distribution's entry point gives keel a working `raft` consensus engine."""

from __future__ import annotations

import keel.plugins
from keel.contract import Kind

from keel_consensus_raft import RaftEngine, RaftOptions, create, plugin

from .harness import Net


def test_keel_loads_raft_from_the_entry_point():
    plugins = keel.plugins.load()
    (installed,) = [item for item in plugins.installed if item.name == "raft"]
    assert installed.kind is Kind.CONSENSUS
    assert installed.distribution == "keel-consensus-raft"
    assert installed.contract == plugin.KEEL_CONTRACT == "1.1"  # it sends appends early (contract 1.1)
    record = plugins.get(Kind.CONSENSUS, "raft", field="consensus.plugin")
    assert (record.create, record.options) == (create, RaftOptions)


def test_the_factory_builds_an_engine_that_elects_a_leader():
    net = Net()
    assert all(isinstance(net.engine(node), RaftEngine) for node in net.ids)
    net.elect("n1")
    assert net.leaders() == ["n1"]

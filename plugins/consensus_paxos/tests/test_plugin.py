"""The distribution's entry point gives keel a working `paxos` consensus engine with checked options."""

from __future__ import annotations

import random

import pytest

import keel.plugins
from keel.config import build
from keel.consensus import EngineSettings, Recovered
from keel.contract import Kind
from keel.errors import ConfigError
from keel.wire import MAX_FRAME

from keel_consensus_paxos import PaxosEngine, PaxosOptions, create, plugin
from keel_consensus_paxos.options import FRAME_HEADROOM

from .harness import Net


def test_keel_loads_paxos_from_the_entry_point():
    """Plugin contract: keel finds the engine by name, built for contract 1.2 (an acceptor's replacing Append)."""
    plugins = keel.plugins.load()
    (installed,) = [item for item in plugins.installed if item.name == "paxos"]
    assert installed.kind is Kind.CONSENSUS
    assert installed.distribution == "keel-consensus-paxos"
    assert installed.contract == plugin.KEEL_CONTRACT == "1.2"
    record = plugins.get(Kind.CONSENSUS, "paxos", field="consensus.plugin")
    assert (record.create, record.options) == (create, PaxosOptions)


def test_the_factory_builds_an_engine_that_elects_a_leader():
    """Plugin contract: the registered factory makes a working engine."""
    net = Net()
    assert all(isinstance(net.engine(node), PaxosEngine) for node in net.ids)
    net.elect("n1")
    assert net.leaders() == ["n1"]


def test_options_from_an_empty_table_are_the_defaults():
    """`[consensus.options]` may be left out: stickiness on, 1 MiB chunks, a lag of 64 slots for promotion."""
    assert build(PaxosOptions, {}, "consensus.options") == PaxosOptions()
    assert PaxosOptions() == PaxosOptions(sticky=True, snapshot_chunk=2**20, promote_lag=64)


@pytest.mark.parametrize(("table", "where"), [
    ({"snapshot_chunk": 0}, "consensus.options.snapshot_chunk: 0 is not a chunk size"),
    ({"snapshot_chunk": 16 * 2**20}, "consensus.options.snapshot_chunk: 16777216 is not a chunk size"),
    ({"promote_lag": -1}, "consensus.options.promote_lag: -1 is not a whole number"),
    ({"sticky": "yes"}, "consensus.options.sticky"),
    ({"stickiness": True}, "consensus.options.stickiness: unknown key"),
])
def test_a_bad_option_is_refused_naming_the_field(table, where):
    """Operators see which key of `[consensus.options]` they got wrong."""
    with pytest.raises(ConfigError) as caught:
        build(PaxosOptions, table, "consensus.options")
    assert str(caught.value).startswith(where)


def test_a_chunk_must_leave_headroom_under_the_frame_limit():
    """An InstallSnapshot carries its chunk plus meta and membership; the chunk alone may not fill a frame."""
    assert PaxosOptions(snapshot_chunk=MAX_FRAME - FRAME_HEADROOM).snapshot_chunk == MAX_FRAME - FRAME_HEADROOM
    with pytest.raises(ValueError, match="headroom"):
        PaxosOptions(snapshot_chunk=MAX_FRAME - FRAME_HEADROOM + 1)


@pytest.mark.parametrize(("settings", "error"), [
    ({"heartbeat": 0.2}, ValueError),  # not below election_min: followers would suspect a live leader
    ({"max_inflight": 0}, ValueError),
    ({"options": object()}, TypeError),
])
def test_the_factory_refuses_settings_that_break_a_rule(settings, error):
    """A mistake in settings is a bug in the caller, refused at once rather than misbehaving later."""
    with pytest.raises(error):
        create(EngineSettings(node_id="n1", voters=("n1",), **settings), Recovered(), random.Random(0))

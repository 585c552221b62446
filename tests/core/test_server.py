"""CoreServer, sans-I/O: what it stamps on the commands it proposes."""

from __future__ import annotations

import random

from keel import plugins, wire
from keel.consensus import EngineSettings
from keel.contract import Kind
from keel.core import Command, CoreServer
from keel.core.api import Call, Put

CLOCK_START_S = 184_438.0  # where a node's clock may start (Trio's carries a random offset)


def leading_server(now: float) -> CoreServer:
    raft = plugins.load().get(Kind.CONSENSUS, "raft", field="consensus")
    server = CoreServer("n1", create=raft.create, settings=EngineSettings(node_id="n1", voters=("n1",)),
                        rng=random.Random(0))
    for step in range(100):  # a single voter elects itself after one election timeout
        server.tick(now + step * 0.05)
        server.poll()
        if server.leading:
            return server
    raise AssertionError("a single voter did not elect itself")


def stamps(server: CoreServer) -> list[float]:
    log = server.node.engine.log
    commands = [wire.decode(entry.data) for entry in log.between(log.snapshot.index + 1, log.last_index) if entry.data]
    return [command.at for command in commands if isinstance(command, Command)]


def test_log_time_goes_on_from_the_log_not_from_the_leaders_own_clock():
    """Sessions expire by log time; a new leader's clock, far from the last one's, must not move it."""
    server = leading_server(CLOCK_START_S)
    took_office = server.now
    server.tick(took_office + 2.0)
    server.request("r", Call("c", 1, 0, Put(b"k", b"v")))
    (at,) = stamps(server)
    assert at == server.now - took_office == 2.0

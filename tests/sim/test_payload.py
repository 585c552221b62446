"""Messages and records through the wire codec."""

from __future__ import annotations

import attrs
import pytest

from keel.sim import SimConfig, Simulation
from keel.sim.payload import Payload

from .gossip import Gossip, cluster


def test_registered_message_arrives_as_an_equal_fresh_copy():
    message = Gossip("a", 7)
    payload = Payload.of(message, wire_only=True)
    copy = payload.open()
    assert copy == message and copy is not message
    assert payload.encoded is not None


def test_plain_values_travel_by_reference_unless_wire_only():
    value = ("gossip", 1)
    assert Payload.of(value, wire_only=False).open() is value
    with pytest.raises(TypeError, match="tuple is not a registered wire message"):
        Payload.of(value, wire_only=True)


def test_message_that_cannot_travel_fails_at_the_send():
    bad = attrs.evolve(Gossip("a", 1), sender=5)  # attrs does not check types; the codec does
    with pytest.raises(TypeError, match="test.sim.gossip: .* cannot travel"):
        Payload.of(bad, wire_only=False)


def test_wire_only_simulation_refuses_unregistered_messages(seed):
    sim = Simulation(seed, cluster(("a", "b"), make=lambda sender, seq: ("gossip", seq)),
                     config=SimConfig(wire_only=True))
    with pytest.raises(TypeError, match="not a registered wire message") as caught:
        sim.run(0.1)
    assert any(f"seed {seed}" in note for note in caught.value.__notes__)


def test_plain_messages_work_in_a_default_simulation(seed):
    sim = Simulation(seed, cluster(("a", "b"), make=lambda sender, seq: ("gossip", seq)))
    sim.run(0.2)
    assert sim.node("b").heard

"""The conformance suite: checks any plugin of a kind must pass, and their pytest plugin."""

from keel.conformance.transport import TransportPair, check_transport, serving_pair

__all__: list[str] = ["TransportPair", "check_transport", "serving_pair"]

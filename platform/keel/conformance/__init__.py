"""The conformance suite: checks any plugin of a kind must pass, and their pytest plugin."""

from keel.conformance.checkers import History, KeyValueModel, Model, Operation, Verdict, assert_linearizable, check_linearizable, load_jsonl
from keel.conformance.transport import TransportPair, check_transport, serving_pair

__all__: list[str] = ["History", "KeyValueModel", "Model", "Operation", "TransportPair", "Verdict", "assert_linearizable", "check_linearizable", "check_transport", "load_jsonl", "serving_pair"]

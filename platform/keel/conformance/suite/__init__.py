"""The conformance suite as pytest tests, for `pytest --pyargs keel.conformance.suite [--consensus NAME]`."""

"""The conformance suite: checks any plugin of a kind must pass, and their pytest plugin."""

__all__: list[str] = []

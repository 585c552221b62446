"""The `keel` command."""

from keel.cli.main import main

__all__ = ["main"]

"""How a client command reaches the core: `--cluster FILE` or `--endpoints HOST:PORT,…`, and `--timeout`."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from keel.cli.status import DEFAULT_CLUSTER
from keel.client import (
    DEFAULT_DEADLINE_S, DEFAULT_REQUEST_TIMEOUT_S, AsyncClient, connect, endpoints_from_cluster, parse_endpoints,
)
from keel.errors import ConfigError
from keel.local import ClusterFile

__all__ = ["DEFAULT_CLUSTER", "add_connection_args", "open_client", "positive"]


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    """The options every client command takes."""
    where = parser.add_argument_group("reaching the core")
    where.add_argument("--cluster", default=DEFAULT_CLUSTER, metavar="FILE",
                       help=f"the cluster.json that `keel up` wrote (default: {DEFAULT_CLUSTER})")
    where.add_argument("--endpoints", metavar="HOST:PORT,…",
                       help="core nodes' client addresses, instead of --cluster")
    where.add_argument("--transport", metavar="NAME",
                       help="transport plugin (default: the cluster file's, else tcp)")
    where.add_argument("--timeout", type=float, default=DEFAULT_DEADLINE_S, metavar="SECONDS",
                       help=f"how long one request may take over all its retries (default: {DEFAULT_DEADLINE_S:g})")


def positive(value: float, option: str) -> float:
    """`value`, if above 0.

    Raises:
        ConfigError: naming `option`, for 0 or less.
    """
    if not value > 0:
        raise ConfigError(option, f"{value:g} is not above 0")
    return value


@asynccontextmanager
async def open_client(args: argparse.Namespace) -> AsyncIterator[AsyncClient]:
    """A client for the core that the connection options name.

    Raises:
        ConfigError: a bad option, or an unreadable cluster file.
    """
    deadline = positive(args.timeout, "--timeout")
    transport = args.transport
    if args.endpoints is not None:
        endpoints = parse_endpoints(args.endpoints, field="--endpoints")
    else:
        path = Path(args.cluster)
        endpoints = endpoints_from_cluster(path, field="--cluster")
        transport = transport or ClusterFile.read(path, field="--cluster").transport
    async with connect(endpoints, transport=transport or "tcp", deadline=deadline,
                       request_timeout=min(DEFAULT_REQUEST_TIMEOUT_S, deadline)) as client:
        yield client

"""`keel node --config FILE`: run one node in the foreground."""

from __future__ import annotations

import argparse
import logging
import os
import signal
from collections.abc import AsyncIterator

import trio

from keel import __version__
from keel import config as keel_config
from keel import plugins
from keel.node import Node

__all__ = ["add_parser"]

log = logging.getLogger("keel.node")

PARENT_POLL_S = 1.0  # seconds between checks that the launching `keel up` still lives


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "node",
        help="run one node (the production way)",
        description="Run one keel node in the foreground until SIGTERM or Ctrl-C. Logs go to stderr.",
    )
    parser.add_argument("--config", required=True, metavar="FILE", help="the node's TOML config (see docs/configuration.md)")
    parser.add_argument("--check", action="store_true", help="check the config and plugins, print 'ok', and exit")
    # `keel up` passes its pid so its nodes end with it even if it is killed.
    parser.add_argument("--exit-with-parent", type=int, metavar="PID", help=argparse.SUPPRESS)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = keel_config.load(args.config)
    keel_config.check_environment(config)
    node = Node(config, plugins.load())
    if args.check:
        print("ok")
        return 0
    # Logged only once the config is good, so a config mistake stays one line.
    log.info("keel %s: node %s starting (pid %d) with %s", __version__, config.node.id, os.getpid(), args.config)
    trio.run(_serve, node, args.exit_with_parent)
    return 0


async def _serve(node: Node, parent: int | None) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_stop_on_signal, node, signals)
            if parent is not None:
                nursery.start_soon(_watch_parent, node, parent)
            await node.run()  # returns once node.stop() has cancelled it
            nursery.cancel_scope.cancel()


async def _stop_on_signal(node: Node, signals: AsyncIterator[int]) -> None:
    async for signum in signals:
        log.info("received %s", signal.Signals(signum).name)
        await node.graceful_stop(node.config.timeouts.shutdown)
        return


async def _watch_parent(node: Node, parent: int) -> None:
    while os.getppid() == parent:
        await trio.sleep(PARENT_POLL_S)
    log.warning("the keel up that started this node (pid %d) is gone; stopping", parent)
    node.stop()

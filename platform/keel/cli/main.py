"""`keel`: parse arguments, run one subcommand, turn errors into one line.

Exit status: 0 on success, 1 when the command failed at what it does
(a node unreachable, a violation found), 2 for a usage or config mistake.
A traceback means a bug in keel, never a mistake of the user.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from keel import __version__
from keel.cli import bench, conformance, data, kv, lease, lock, node, plugins, status, up
from keel.errors import ConfigError, KeelError

__all__ = ["build_parser", "main"]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, not usage plus error."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="keel",
        description="keel: a consistent core (Raft or Multi-Paxos) coordinating an eventually consistent data cluster.",
    )
    parser.add_argument("--version", action="version", version=f"keel {__version__}")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                        help="how much to log to stderr (default: info)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for module in (node, up, status, kv, data, lease, lock, plugins, conformance, bench):
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run `keel` with `argv` (default: the process arguments) and exit."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        sys.exit(EXIT_USAGE)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code = args.run(args)
    except (KeelError, KeyboardInterrupt, BaseExceptionGroup) as raised:
        code = _report(raised)
    sys.exit(code)


def _report(raised: BaseException) -> int:
    """Print a keel error as one line and return the exit status; re-raise anything else.

    Errors raised inside Trio nurseries arrive wrapped in exception groups;
    a group of keel errors is reported by its first error.
    """
    leaves = _leaves(raised)
    if all(isinstance(e, KeyboardInterrupt) for e in leaves):
        return EXIT_INTERRUPTED
    if not all(isinstance(e, KeelError | KeyboardInterrupt) for e in leaves):
        raise raised
    first = next(e for e in leaves if isinstance(e, KeelError))
    if isinstance(first, ConfigError):
        sys.stderr.write(f"config error: {first}\n")
        return EXIT_USAGE
    sys.stderr.write(f"error: {first}\n")
    return EXIT_FAILED


def _leaves(raised: BaseException) -> list[BaseException]:
    if isinstance(raised, BaseExceptionGroup):
        return [leaf for inner in raised.exceptions for leaf in _leaves(inner)]
    return [raised]

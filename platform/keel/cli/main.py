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
from keel.cli import bench, node, plugins, status, up
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
    for module in (node, up, status, plugins, bench):
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
    except ConfigError as exc:
        sys.stderr.write(f"config error: {exc}\n")
        code = EXIT_USAGE
    except KeelError as exc:
        sys.stderr.write(f"error: {exc}\n")
        code = EXIT_FAILED
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    sys.exit(code)

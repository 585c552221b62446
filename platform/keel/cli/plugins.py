"""`keel plugins`: what is installed."""

from __future__ import annotations

import argparse

from keel import CONTRACT_VERSION, plugins
from keel.cli.output import print_json, print_table

__all__ = ["add_parser"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "plugins",
        help="list installed plugins",
        description=f"List installed plugins: name, kind, version, distribution, contract (this keel: {CONTRACT_VERSION}).",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON array, one object per plugin")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    rows = [item.describe() for item in plugins.load().installed]
    if args.json:
        print_json(rows)
    else:
        print_table(
            ["name", "kind", "version", "distribution", "contract", "summary"],
            [[r[k] for k in ("name", "kind", "version", "distribution", "contract", "summary")] for r in rows],
            title=f"keel plugins (contract {CONTRACT_VERSION})",
        )
    return 0

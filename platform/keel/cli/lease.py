"""`keel lease`: grant, keep alive and revoke leases of the core."""

from __future__ import annotations

import argparse
from typing import Any

import trio

from keel.cli.connection import add_connection_args, open_client, positive
from keel.cli.output import print_json

__all__ = ["add_parser", "lease_id"]


def lease_id(text: str) -> int:
    """A lease id from the command line (an argparse type: a mistake is a one-line usage error)."""
    try:
        number = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a lease id (a whole number)") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a lease id (ids start at 1)")
    return number


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "lease", help="grant, keep alive and revoke leases",
        description="Leases of the core: keys attached to a lease (keel kv put --lease ID) are deleted "
                    "when it expires or is revoked.")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=type(parser), required=True)

    grant = _verb(verbs, "grant", "grant a lease",
                  "Grant a lease of TTL seconds and print its id. Nothing keeps it alive: it expires TTL "
                  "seconds later unless `keel lease keepalive ID` runs.", _grant)
    grant.add_argument("ttl", type=float, metavar="TTL", help="seconds the lease lives without keep-alives")

    revoke = _verb(verbs, "revoke", "revoke a lease", "Revoke lease ID now, deleting its keys.", _revoke)
    revoke.add_argument("id", type=lease_id, metavar="ID")

    keepalive = _verb(verbs, "keepalive", "keep a lease alive",
                      "Keep lease ID alive until Ctrl-C (with --once: refresh it once and exit).", _keepalive)
    keepalive.add_argument("id", type=lease_id, metavar="ID")
    keepalive.add_argument("--once", action="store_true", help="refresh once and exit")


def _verb(verbs: argparse._SubParsersAction, name: str, summary: str, description: str,
          run: Any) -> argparse.ArgumentParser:
    parser = verbs.add_parser(name, help=summary, description=description)
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_connection_args(parser)
    parser.set_defaults(run=lambda args: trio.run(run, args))
    return parser


async def _grant(args: argparse.Namespace) -> int:
    ttl = positive(args.ttl, "TTL")
    async with open_client(args) as c:
        lease = await c.grant_lease(ttl, keep_alive=False)
    if args.json:
        print_json({"id": lease.id, "ttl": lease.ttl})
    else:
        print(lease.id)
    return 0


async def _revoke(args: argparse.Namespace) -> int:
    async with open_client(args) as c:
        await c.revoke_lease(args.id)
    if args.json:
        print_json({"id": args.id, "revoked": True})
    else:
        print(f"lease {args.id} revoked")
    return 0


async def _keepalive(args: argparse.Namespace) -> int:
    async with open_client(args) as c:
        while True:
            ttl = await c.keepalive(args.id)
            if args.json:
                print_json({"id": args.id, "ttl": ttl})
            else:
                print(f"lease {args.id} kept alive (ttl {ttl:g} s)", flush=True)
            if args.once:
                return 0
            await trio.sleep(ttl / 3)

"""`keel kv`: put, get, range, del, cas and watch keys of the core."""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from typing import Any

import trio

from keel.cli.connection import add_connection_args, open_client
from keel.cli.lease import lease_id
from keel.cli.output import print_json
from keel.core.api import Event, KeyValue
from keel.errors import ConfigError, KeelError

__all__ = ["add_parser", "kv_json"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "kv", help="read and write the core's keys",
        description="Read and write the core's keys. Keys and values are text (UTF-8).")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=type(parser), required=True)

    put = _verb(verbs, "put", "set a key", "Set KEY to VALUE; prints OK.", _put)
    put.add_argument("key", metavar="KEY")
    put.add_argument("value", metavar="VALUE")
    put.add_argument("--lease", type=lease_id, metavar="ID", help="attach the key to this lease (keel lease grant)")

    get = _verb(verbs, "get", "print a key's value",
                "Print KEY's value. Exits 1, saying so on stderr, when there is no such key.", _get)
    get.add_argument("key", metavar="KEY")
    get.add_argument("--serializable", action="store_true",
                     help="let any node answer from what it applied (faster, maybe stale)")

    scan = _verb(verbs, "range", "list keys by prefix",
                 "Print every key starting with PREFIX and its value, tab-separated, in key order.", _range)
    scan.add_argument("prefix", metavar="PREFIX")
    scan.add_argument("--limit", type=int, default=0, metavar="N", help="at most N keys (default: all)")
    scan.add_argument("--keys-only", action="store_true", help="print the keys only")
    scan.add_argument("--serializable", action="store_true", help="let any node answer (maybe stale)")

    delete = _verb(verbs, "del", "delete keys", "Delete KEY (with --prefix, every key starting with it); "
                   "prints how many were deleted.", _delete)
    delete.add_argument("key", metavar="KEY")
    delete.add_argument("--prefix", action="store_true", help="delete every key starting with KEY")

    cas = _verb(verbs, "cas", "compare and swap",
                "Set KEY to NEW if its value is EXPECTED (with --absent: if KEY does not exist; give KEY NEW "
                "only). Exits 1 when the compare fails.", _cas)
    cas.add_argument("words", nargs="+", metavar="KEY EXPECTED NEW")
    cas.add_argument("--absent", action="store_true", help="swap only if KEY does not exist (then: KEY NEW)")

    watch = _verb(verbs, "watch", "print changes as they happen",
                  "Print every change to KEY (with --prefix, to keys starting with it), once each, in order, "
                  "until Ctrl-C: `PUT key value` or `DELETE key`.", _watch, json_help="print one JSON object a line")
    watch.add_argument("key", metavar="KEY")
    watch.add_argument("--prefix", action="store_true", help="watch every key starting with KEY")
    watch.add_argument("--rev", type=int, default=0, metavar="N",
                       help="start at revision N, replaying what changed since (default: changes from now)")
    watch.add_argument("--count", type=int, default=0, metavar="N", help="stop after N events (default: never)")


def _verb(verbs: argparse._SubParsersAction, name: str, summary: str, description: str, run: Any,
          *, json_help: str = "print JSON") -> argparse.ArgumentParser:
    parser = verbs.add_parser(name, help=summary, description=description)
    parser.add_argument("--json", action="store_true", help=json_help)
    add_connection_args(parser)
    parser.set_defaults(run=lambda args: trio.run(run, args))
    return parser


def _text(data: bytes, field: str) -> dict[str, str]:
    try:
        return {field: data.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{field}_base64": base64.b64encode(data).decode("ascii")}


def kv_json(kv: KeyValue) -> dict[str, Any]:
    """A key as JSON: text where it is UTF-8, else `key_base64` / `value_base64`."""
    return (_text(kv.key, "key") | _text(kv.value, "value")
            | {"create_revision": kv.create_revision, "mod_revision": kv.mod_revision, "version": kv.version,
               "lease": kv.lease})


def _write(*parts: bytes) -> None:
    try:
        sys.stdout.buffer.write(b"".join(parts) + b"\n")
        sys.stdout.buffer.flush()
    except BrokenPipeError:  # `keel kv watch … | head`: the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so Python's final flush cannot fail again
        raise KeelError("stdout: closed by the reader") from None


async def _put(args: argparse.Namespace) -> int:
    async with open_client(args) as c:
        reply = await c.put(args.key, args.value, lease=args.lease)
    if args.json:
        print_json({"revision": reply.revision})
    else:
        _write(b"OK")
    return 0


async def _get(args: argparse.Namespace) -> int:
    async with open_client(args) as c:
        kv = await c.get(args.key, serializable=args.serializable)
    if kv is None:
        raise KeelError(f"kv get: {args.key}: not found")
    if args.json:
        print_json(kv_json(kv))
    else:
        _write(kv.value)
    return 0


async def _range(args: argparse.Namespace) -> int:
    if args.limit < 0:
        raise ConfigError("--limit", f"{args.limit} is below 0")
    async with open_client(args) as c:
        reply = await c.range(args.prefix, limit=args.limit, keys_only=args.keys_only, serializable=args.serializable)
    if args.json:
        print_json({"revision": reply.revision, "count": reply.count, "more": reply.more,
                    "kvs": [kv_json(kv) for kv in reply.kvs]})
    else:
        for kv in reply.kvs:
            if args.keys_only:
                _write(kv.key)
            else:
                _write(kv.key, b"\t", kv.value)
    return 0


async def _delete(args: argparse.Namespace) -> int:
    async with open_client(args) as c:
        reply = await c.delete(args.key, prefix=args.prefix)
    if args.json:
        print_json({"revision": reply.revision, "deleted": reply.deleted})
    else:
        _write(str(reply.deleted).encode())
    return 0


async def _cas(args: argparse.Namespace) -> int:
    wanted = "KEY NEW" if args.absent else "KEY EXPECTED NEW"
    if len(args.words) != len(wanted.split()):
        raise ConfigError("kv cas", f"takes {wanted}, got {len(args.words)} argument(s)")
    key, new = args.words[0], args.words[-1]
    expected = None if args.absent else args.words[1]
    async with open_client(args) as c:
        swapped = await c.cas(key, expected, new)
    if args.json:
        print_json({"swapped": swapped})
    elif swapped:
        _write(b"OK")
    if not swapped:
        what = "exists" if expected is None else f"does not hold {expected!r}"
        sys.stderr.write(f"kv cas: {key}: compare failed: the key {what}\n")
        return 1
    return 0


def _event_line(event: Event) -> bytes:
    if event.kind == "put":
        return b"PUT " + event.kv.key + b" " + event.kv.value
    return event.kind.upper().encode() + b" " + event.kv.key


async def _watch(args: argparse.Namespace) -> int:
    if args.rev < 0:
        raise ConfigError("--rev", f"{args.rev} is below 0")
    if args.count < 0:
        raise ConfigError("--count", f"{args.count} is below 0")
    seen = 0
    async with open_client(args) as c:
        async for event in c.watch(args.key, prefix=args.prefix, start_revision=args.rev):
            if args.json:
                row = {"type": event.kind, "revision": event.kv.mod_revision} | kv_json(event.kv)
                _write(json.dumps(row).encode())
            else:
                _write(_event_line(event))
            seen += 1
            if seen == args.count:
                break
    return 0

"""`keel data` (put, get, del keys of a bucket) and `keel bucket` (create, list, show buckets)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import trio

from keel.cli.connection import add_connection_args, open_client
from keel.cli.output import print_json
from keel.data.bucket import DEFAULT_BUCKET, MAX_REPLICAS, BucketSpec
from keel.errors import ConfigError, KeelError

__all__ = ["add_parser"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    _data_parser(commands)
    _bucket_parser(commands)


def _data_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "data", help="read and write keys of the data cluster",
        description="Read and write keys of a bucket of the data cluster. Keys and values are text (UTF-8). "
                    "Each call goes straight to a replica of the key; N, R and W default to the bucket's.")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=type(parser), required=True)
    put = _verb(verbs, "put", "set a key", "Set KEY to VALUE in the bucket; prints OK once W replicas hold it.",
                _put, quorum="w")
    put.add_argument("key", metavar="KEY")
    put.add_argument("value", metavar="VALUE")
    get = _verb(verbs, "get", "print a key's value", "Print KEY's value, merged from R replicas (stale ones are "
                "repaired). Exits 1, saying so on stderr, when there is no such key.", _get, quorum="r")
    get.add_argument("key", metavar="KEY")
    delete = _verb(verbs, "del", "delete a key", "Delete KEY from the bucket; prints OK once W replicas hold "
                   "the delete.", _delete, quorum="w")
    delete.add_argument("key", metavar="KEY")


def _verb(verbs: argparse._SubParsersAction, name: str, summary: str, description: str, run: Any, *,
          quorum: str) -> argparse.ArgumentParser:
    parser = verbs.add_parser(name, help=summary, description=description)
    parser.add_argument("--bucket", default=DEFAULT_BUCKET, metavar="NAME", help=f"the bucket (default: {DEFAULT_BUCKET})")
    parser.add_argument("-n", type=_replicas("-n"), default=0, metavar="N", help="replicas of the key (default: the bucket's)")
    parser.add_argument(f"-{quorum}", type=_replicas(f"-{quorum}"), default=0, metavar=quorum.upper(),
                        help=f"replicas that must {'acknowledge' if quorum == 'w' else 'answer'} (default: the bucket's)")
    parser.add_argument("--wait", type=float, default=2.0, metavar="SECONDS",
                        help="seconds the coordinating data node waits for replicas (default: 2)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_connection_args(parser)
    parser.set_defaults(run=lambda args: trio.run(run, args))
    return parser


def _replicas(flag: str) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not 1 <= value <= MAX_REPLICAS:
            raise argparse.ArgumentTypeError(f"{value} is outside 1…{MAX_REPLICAS}")
        return value
    parse.__name__ = flag
    return parse


def _check_timeout(args: argparse.Namespace) -> None:
    if not 0 < args.wait <= 60:
        raise ConfigError("--wait", f"{args.wait:g} is outside (0, 60] seconds")


async def _put(args: argparse.Namespace) -> int:
    _check_timeout(args)
    async with open_client(args) as c:
        await c.bucket(args.bucket).put(args.key, args.value, n=args.n, w=args.w, timeout=args.wait)
    print_json({"ok": True}) if args.json else print("OK")
    return 0


async def _get(args: argparse.Namespace) -> int:
    _check_timeout(args)
    async with open_client(args) as c:
        value = await c.bucket(args.bucket).get(args.key, n=args.n, r=args.r, timeout=args.wait)
    if value is None:
        raise KeelError(f"data get: {args.key}: not found in bucket {args.bucket}")
    if args.json:
        print_json(_text(value))
    else:
        sys.stdout.buffer.write(value + b"\n")
        sys.stdout.buffer.flush()
    return 0


async def _delete(args: argparse.Namespace) -> int:
    _check_timeout(args)
    async with open_client(args) as c:
        await c.bucket(args.bucket).delete(args.key, n=args.n, w=args.w, timeout=args.wait)
    print_json({"ok": True}) if args.json else print("OK")
    return 0


def _text(value: bytes) -> dict[str, str]:
    import base64  # noqa: PLC0415

    try:
        return {"value": value.decode("utf-8")}
    except UnicodeDecodeError:
        return {"value_base64": base64.b64encode(value).decode("ascii")}


# --- keel bucket --------------------------------------------------------------------------------


def _bucket_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "bucket", help="create and list buckets of the data cluster",
        description="Buckets are named sets of keys with one store (lww, …) and N/R/W defaults, kept in the core.")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=type(parser), required=True)
    create = verbs.add_parser("create", help="add a bucket",
                              description="Add bucket NAME. Asking again with the same settings changes nothing; "
                                          "with other settings it is refused.")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--store", default="lww", metavar="STORE", help="the store plugin (default: lww; see keel plugins)")
    create.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a store option (repeatable); VALUE is read as TOML (60, true, \"text\")")
    for flag, default, what in (("-n", 3, "replicas of each key"), ("-r", 2, "replicas a read asks"),
                                ("-w", 2, "replicas that acknowledge a write")):
        create.add_argument(flag, type=_replicas(flag), default=default, metavar=flag[1].upper(),
                            help=f"{what} (default: {default})")
    create.add_argument("--json", action="store_true", help="print JSON")
    add_connection_args(create)
    create.set_defaults(run=lambda args: trio.run(_create, args))
    listing = verbs.add_parser("list", help="list buckets", description="Print every bucket: name, store, N/R/W.")
    listing.add_argument("--json", action="store_true", help="print JSON")
    add_connection_args(listing)
    listing.set_defaults(run=lambda args: trio.run(_list, args))
    show = verbs.add_parser("show", help="show one bucket", description="Print bucket NAME's store, options and N/R/W.")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--json", action="store_true", help="print JSON")
    add_connection_args(show)
    show.set_defaults(run=lambda args: trio.run(_show, args))


def _options(pairs: list[str], store: str) -> dict[str, Any]:
    import tomllib  # noqa: PLC0415

    from keel import plugins  # noqa: PLC0415
    from keel.config import build  # noqa: PLC0415
    from keel.contract import Kind  # noqa: PLC0415

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ConfigError("--option", f"{pair!r} is not KEY=VALUE")
        try:
            options[key] = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            options[key] = text  # plain text without quotes
    plugin = plugins.load().get(Kind.STORE, store, field="--store")  # an unknown store, listing the installed ones
    if plugin.options is not None:
        build(plugin.options, options, "--option")  # refuses a bad option here, naming it
    elif options:
        raise ConfigError("--option", f"the {store} store takes no options")
    return options


async def _create(args: argparse.Namespace) -> int:
    options = _options(args.option, args.store)
    spec = BucketSpec(args.name, args.store, options, n=args.n, r=args.r, w=args.w)  # KeelError on bad n/r/w
    async with open_client(args) as c:
        await c.create_bucket(spec.name, store=spec.store, options=spec.options, n=spec.n, r=spec.r, w=spec.w)
    print_json(_spec_json(spec)) if args.json else print(f"bucket {spec.name}: {_summary(spec)}")
    return 0


async def _list(args: argparse.Namespace) -> int:
    async with open_client(args) as c:
        specs = await c.buckets()
    if args.json:
        print_json([_spec_json(s) for s in specs])
    else:
        for spec in specs:
            print(f"{spec.name}\t{_summary(spec)}")
    return 0


async def _show(args: argparse.Namespace) -> int:
    async with open_client(args) as c:
        specs = {s.name: s for s in await c.buckets()}
    spec = specs.get(args.name)
    if spec is None:
        raise KeelError(f"bucket {args.name!r} does not exist (keel bucket list)")
    if args.json:
        print_json(_spec_json(spec))
    else:
        print(f"bucket {spec.name}: {_summary(spec)}")
        for key, value in sorted(spec.options.items()):
            print(f"  {key} = {value!r}")
    return 0


def _summary(spec: BucketSpec) -> str:
    return f"store {spec.store}, n={spec.n} r={spec.r} w={spec.w}"


def _spec_json(spec: BucketSpec) -> dict[str, Any]:
    return {"name": spec.name, "store": spec.store, "options": spec.options, "n": spec.n, "r": spec.r, "w": spec.w}

"""`keel bench`: measure, print, and optionally record in docs/benchmarks.md."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from keel.bench import (
    ClientBench, CoreBench, DataBench, bench_client, bench_core, bench_data, bench_transport, bench_wire, write_docs,
)
from keel.bench import machine
from keel.cli.output import print_json, print_table
from keel.contract import Kind
from keel.errors import ConfigError
from keel import plugins

__all__ = ["add_parser"]

TARGETS = ("wire", "transport", "core", "client", "data", "all")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "bench",
        help="measure keel's speed on this machine",
        description="Measure the wire codec (wire), a transport between two endpoints on 127.0.0.1 (transport), "
                    "a local 3-node core with its durable log on, through the client library (core), the client's "
                    "three doors (async, blocking, asyncio) against such a core (client), the data cluster on 3 core + 3 "
                    "data nodes (data), or all five.",
    )
    parser.add_argument("target", choices=TARGETS, help="what to measure")
    parser.add_argument("--transport", default="tcp", metavar="NAME", help="transport plugin to measure (default: tcp)")
    parser.add_argument("--messages", type=int, default=100_000, metavar="N", help="one-way messages to send (default: 100000)")
    parser.add_argument("--requests", type=int, default=5_000, metavar="N", help="requests to send (default: 5000)")
    core = CoreBench()
    parser.add_argument("--consensus", action="extend", nargs="+", metavar="NAME",
                        help="core: consensus plugins to measure, one after the other on the same machine "
                             "(default: every installed one)")
    parser.add_argument("--clients", type=int, default=core.clients, metavar="N",
                        help=f"core and data: writers at once, one write in flight each (default: {core.clients})")
    parser.add_argument("--writes", type=int, default=core.writes, metavar="N",
                        help=f"core and data: writes (and data reads) in the throughput runs (default: {core.writes})")
    parser.add_argument("--failovers", type=int, default=core.failovers, metavar="N",
                        help=f"core: times the leader is killed (default: {core.failovers})")
    client = ClientBench()
    parser.add_argument("--threads", type=int, default=client.threads, metavar="N",
                        help=f"client: threads sharing one blocking client, against as many tasks sharing one "
                             f"async client (default: {client.threads})")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--write-docs", metavar="FILE", help="also record the figures in FILE (docs/benchmarks.md)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.messages < 1:
        raise ConfigError("--messages", f"{args.messages} is below 1")
    if args.requests < 64:
        raise ConfigError("--requests", f"{args.requests} is below 64 (one per request in flight)")
    for name in ("clients", "writes", "threads"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name}", f"{getattr(args, name)} is below 1")
    if args.failovers < 0:
        raise ConfigError("--failovers", f"{args.failovers} is below 0")
    results: dict[str, Any] = {"machine": machine()}
    if args.target in ("wire", "all"):
        results["wire"] = bench_wire()
    if args.target in ("transport", "all"):
        results["transport"] = bench_transport(args.transport, messages=args.messages, requests=args.requests)
    if args.target in ("core", "all"):
        installed = plugins.load()
        engines = list(dict.fromkeys(args.consensus or installed.names(Kind.CONSENSUS)))
        for name in engines:
            installed.get(Kind.CONSENSUS, name, field="--consensus")
        # Keyed by engine, measured in turn with the same settings, so the figures compare side by side.
        results["core"] = {name: bench_core(CoreBench(consensus=name, clients=args.clients, writes=args.writes,
                                                      failovers=args.failovers))
                           for name in engines}
    if args.target in ("client", "all"):
        results["client"] = bench_client(ClientBench(threads=args.threads))
    if args.target in ("data", "all"):
        results["data"] = bench_data(DataBench(consensus=(args.consensus or ["raft"])[0], clients=args.clients,
                                               writes=args.writes, reads=args.writes))
    if args.json:
        print_json(results)
    else:
        for name, section in results.items():
            if name == "core":
                engines = list(section)
                figures = list(dict.fromkeys(key for figures in section.values() for key in figures))
                print_table(["figure", *engines], [[key, *(section[e].get(key, "") for e in engines)]
                                                   for key in figures], title=name)
            else:
                print_table(["figure", "value"], list(section.items()), title=name)
    if args.write_docs:
        command = "keel " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "keel bench"
        write_docs(Path(args.write_docs), results, command)
    return 0

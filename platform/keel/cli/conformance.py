"""`keel conformance`: run the seeded conformance suite against installed plugins."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

import trio
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from keel import plugins
from keel.cli.output import print_json, print_table
from keel.conformance.pool import SEED_TIMEOUT_S, run_pool
from keel.conformance.runner import SeedResult, Summary, summarize
from keel.contract import Kind
from keel.errors import ConfigError

__all__ = ["DEFAULT_SEEDS", "add_parser"]

DEFAULT_SEEDS = 100  # per engine; about a minute on two cores. `make conformance` asks for 1,000.
REPLAY = "keel conformance --consensus {name} --half core --seed {{seed}}"
REPLAY_DATA = "keel conformance --consensus {name} --store {store} --half data --seed {{seed}}"


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "conformance",
        help="run the seeded conformance suite against installed plugins",
        description="Run the conformance suite for many seeds: the core half (a replicated key-value service "
                    "under crashes, partitions, message loss, leader crashes and membership changes, its history "
                    "checked for linearizability) against each consensus engine, and the data half (a bucket of "
                    "each store on data nodes following that core, under crashes, partitions, loss, duplication, "
                    "clock skew and a late joiner; checked for convergence, quorum reads and lost writes) against "
                    "each store x engine. Exits 1 if any seed found a violation; each one is printed with the "
                    "command that replays it.",
    )
    parser.add_argument("--consensus", action="extend", nargs="+", metavar="NAME",
                        help="consensus engines to check (default: every installed one)")
    parser.add_argument("--store", action="extend", nargs="+", metavar="NAME",
                        help="stores for the data half (default: every installed one)")
    parser.add_argument("--half", choices=("core", "data", "both"), default="both",
                        help="the core half, the data half, or both (default: both)")
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, metavar="N",
                        help=f"seeds per engine: FIRST .. FIRST+N-1 (default: {DEFAULT_SEEDS})")
    parser.add_argument("--first", type=int, default=0, metavar="SEED", help="the first seed (default: 0)")
    parser.add_argument("--seed", type=int, metavar="SEED", help="run this one seed only (to replay a violation)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="worker processes (default: one per core)")
    parser.add_argument("--seed-timeout", type=float, default=SEED_TIMEOUT_S, metavar="SECONDS",
                        help=f"a seed still running after this is reported as hung (default: {SEED_TIMEOUT_S:g})")
    parser.add_argument("--json", action="store_true", help="print a JSON array, one object per combination")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    engines = _engines(args.consensus)
    stores = _stores(args.store) if args.half != "core" else []
    names = (engines if args.half != "data" else []) + [f"{e}/{s}" for s in stores for e in engines]
    seeds = [args.seed] if args.seed is not None else list(range(args.first, args.first + args.seeds))
    if args.seed is None and args.seeds < 1:
        raise ConfigError("--seeds", f"{args.seeds} is below 1")
    if args.jobs < 1:
        raise ConfigError("--jobs", f"{args.jobs} is below 1")
    if args.seed_timeout <= 0:
        raise ConfigError("--seed-timeout", f"{args.seed_timeout:g} is not positive")
    results: dict[str, list[SeedResult]] = {name: [] for name in names}
    jobs = [(name, seed) for seed in seeds for name in names]
    # The bar goes to stderr, so `--json` output stays clean; Rich draws it only on a terminal.
    with Progress(TextColumn("conformance"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[found]}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("seeds", total=len(jobs), found="")
        found = 0

        def on_result(name: str, result: SeedResult) -> None:
            nonlocal found
            results[name].append(result)
            found += result.violation is not None
            bar.update(task, advance=1, found=f"{found} violation(s)" if found else "")

        trio.run(_run, jobs, min(args.jobs, len(jobs)), on_result, args.seed_timeout)
    summaries = [summarize(_combination(name), results[name], replay=_replay(name)) for name in names]
    _print(summaries, as_json=args.json)
    return 1 if any(s.violations for s in summaries) else 0


async def _run(jobs: list[tuple[str, int]], workers: int, on_result: Callable[[str, SeedResult], None],
               seed_timeout: float) -> None:
    await run_pool(jobs, workers=workers, on_result=on_result, seed_timeout=seed_timeout)


def _combination(name: str) -> tuple[tuple[str, str], ...]:
    consensus, _, store = name.partition("/")
    return (("consensus", consensus), ("store", store)) if store else (("consensus", consensus),)


def _replay(name: str) -> str:
    consensus, _, store = name.partition("/")
    return REPLAY_DATA.format(name=consensus, store=store) if store else REPLAY.format(name=consensus)


def _stores(asked: list[str] | None) -> list[str]:
    installed = plugins.load().names(Kind.STORE)
    if not asked:
        return list(installed)
    for name in asked:
        if name not in installed:
            raise ConfigError("--store", f'"{name}" is not an installed store plugin (installed: {", ".join(installed)})')
    return list(dict.fromkeys(asked))


def _engines(asked: list[str] | None) -> list[str]:
    installed = plugins.load().names(Kind.CONSENSUS)
    if not installed:
        raise ConfigError("--consensus", "no consensus plugin is installed")
    if not asked:
        return list(installed)
    for name in asked:
        if name not in installed:
            raise ConfigError("--consensus", f'"{name}" is not an installed consensus plugin '
                                             f'(installed: {", ".join(installed)})')
    return list(dict.fromkeys(asked))


def _print(summaries: list[Summary], *, as_json: bool) -> None:
    if as_json:
        print_json([s.to_json() for s in summaries])
        return
    rows = [
        [dict(s.combination)["consensus"], dict(s.combination).get("store", "core half"), s.seeds,
         f"{s.operations:,}", len(s.violations), s.snapshots_installed, s.membership_changes,
         f"{s.slowest_seed} ({s.slowest_s:.1f} s)"]
        for s in summaries
    ]
    print_table(["consensus", "store", "seeds", "ops checked", "violations", "snapshots", "changes", "slowest"],
                rows, title="keel conformance")
    for summary in summaries:
        for result in summary.violations:
            # The first line names the rule broken; replaying one seed shows the rest (the trace's tail).
            shown = result.violation if summary.seeds == 1 else (result.violation or "").splitlines()[0]
            label = "/".join(value for _, value in summary.combination)
            sys.stdout.write(f"violation: {label} seed {result.seed}: "
                             f"{shown}\n  replay: {summary.replay.format(seed=result.seed)}\n")

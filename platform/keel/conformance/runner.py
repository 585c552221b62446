"""Running a conformance scenario over many seeds and summing up what it found.

A scenario is a function `(seed) -> SeedResult` that runs one seeded
simulation and checks it; it never raises for a violation, it reports one.
`run_many` runs it for a range of seeds and folds the results into a
`Summary` per combination of plugins (consensus engine now; store later),
which `keel conformance` prints as a table or JSON and `make conformance`
runs with 1,000 seeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import attrs

__all__ = ["SeedResult", "Summary", "run_many", "summarize"]


@attrs.frozen(kw_only=True)
class SeedResult:
    """What one seed of one scenario found."""

    seed: int
    operations: int  # client operations recorded and checked
    violation: str | None = None  # the first broken rule, with what shows it
    snapshots_installed: int = 0  # snapshots servers received from a leader: catch-up happened
    membership_changes: int = 0  # one-server changes that entered the log
    elapsed: float = 0.0  # wall-clock seconds; for the summary's slowest seed, never asserted

    @classmethod
    def from_json(cls, row: dict[str, object]) -> SeedResult:
        """Rebuild a result from `attrs.asdict` output (a worker's line).

        Raises:
            ValueError: a field is missing or of the wrong type.
        """
        try:
            seed, operations = row["seed"], row["operations"]
            violation = row.get("violation")
            counts = {name: row.get(name, 0) for name in ("snapshots_installed", "membership_changes")}
            elapsed = row.get("elapsed", 0.0)
        except (KeyError, AttributeError) as exc:
            raise ValueError(f"seed result {row!r}: missing {exc}") from None
        if not all(type(v) is int for v in (seed, operations, *counts.values())):
            raise ValueError(f"seed result {row!r}: seed, operations and counts must be integers")
        if violation is not None and not isinstance(violation, str):
            raise ValueError(f"seed result {row!r}: violation must be a string or null")
        return cls(seed=seed, operations=operations, violation=violation, elapsed=float(elapsed),  # type: ignore[arg-type]
                   **counts)  # type: ignore[arg-type]


@attrs.frozen(kw_only=True)
class Summary:
    """One combination's results over a range of seeds."""

    combination: tuple[tuple[str, str], ...]  # (("consensus", "raft"),), later also ("store", "lww")
    seeds: int
    operations: int
    snapshots_installed: int
    membership_changes: int
    violations: tuple[SeedResult, ...]
    slowest_seed: int | None
    slowest_s: float
    replay: str  # the command that replays one seed; "{seed}" marks where the seed goes

    def to_json(self) -> dict[str, object]:
        row: dict[str, object] = dict(self.combination)
        row |= {
            "seeds": self.seeds,
            "operations": self.operations,
            "violations": len(self.violations),
            "snapshots_installed": self.snapshots_installed,
            "membership_changes": self.membership_changes,
            "slowest_seed": self.slowest_seed,
            "slowest_s": round(self.slowest_s, 3),
            "failed_seeds": [
                {"seed": r.seed, "violation": r.violation, "replay": self.replay.format(seed=r.seed)}
                for r in self.violations
            ],
        }
        return row


def run_many(
    combination: tuple[tuple[str, str], ...],
    scenario: Callable[[int], SeedResult],
    seeds: Iterable[int],
    *,
    replay: str,
    on_seed: Callable[[SeedResult], None] = lambda result: None,
) -> Summary:
    """Run `scenario` once per seed in this process; `on_seed` sees each result (for a progress bar)."""
    results = []
    for seed in seeds:
        start = time.perf_counter()
        result = scenario(seed)
        result = attrs.evolve(result, elapsed=time.perf_counter() - start)
        results.append(result)
        on_seed(result)
    return summarize(combination, results, replay=replay)


def summarize(combination: tuple[tuple[str, str], ...], results: Iterable[SeedResult], *, replay: str) -> Summary:
    """Fold one combination's seed results into its `Summary`."""
    ordered = sorted(results, key=lambda r: r.seed)
    slowest = max(ordered, key=lambda r: r.elapsed, default=None)
    return Summary(
        combination=combination,
        seeds=len(ordered),
        operations=sum(r.operations for r in ordered),
        snapshots_installed=sum(r.snapshots_installed for r in ordered),
        membership_changes=sum(r.membership_changes for r in ordered),
        violations=tuple(r for r in ordered if r.violation is not None),
        slowest_seed=slowest.seed if slowest else None,
        slowest_s=slowest.elapsed if slowest else 0.0,
        replay=replay,
    )

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

__all__ = ["SeedResult", "Summary", "run_many"]


@attrs.frozen(kw_only=True)
class SeedResult:
    """What one seed of one scenario found."""

    seed: int
    operations: int  # client operations recorded and checked
    violation: str | None = None  # the first broken rule, with what shows it
    elapsed: float = 0.0  # wall-clock seconds; for the summary's slowest seed, never asserted


@attrs.frozen(kw_only=True)
class Summary:
    """One combination's results over a range of seeds."""

    combination: tuple[tuple[str, str], ...]  # (("consensus", "raft"),), later also ("store", "lww")
    seeds: int
    operations: int
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
    """Run `scenario` once per seed; `on_seed` sees each result (for a progress bar)."""
    results = []
    for seed in seeds:
        start = time.perf_counter()
        result = scenario(seed)
        result = attrs.evolve(result, elapsed=time.perf_counter() - start)
        results.append(result)
        on_seed(result)
    slowest = max(results, key=lambda r: r.elapsed, default=None)
    return Summary(
        combination=combination,
        seeds=len(results),
        operations=sum(r.operations for r in results),
        violations=tuple(r for r in results if r.violation is not None),
        slowest_seed=slowest.seed if slowest else None,
        slowest_s=slowest.elapsed if slowest else 0.0,
        replay=replay,
    )

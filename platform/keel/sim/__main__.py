"""`python -m keel.sim --seed N`: run the heartbeat demo cluster and print its trace hash."""

from __future__ import annotations

import argparse
import sys

from keel.sim.demo import run_demo
from keel.sim.schedules import SCHEDULES


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the demo, print the schedule, counts and hash; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m keel.sim", description=__doc__)
    parser.add_argument("--seed", type=int, default=0, help="the run's seed (default 0)")
    parser.add_argument("--nodes", type=int, default=3, help="cluster size (default 3)")
    parser.add_argument("--duration", type=float, default=10.0, help="virtual seconds of faults (default 10)")
    parser.add_argument("--schedule", choices=sorted(SCHEDULES), default="random", help="fault schedule (default random)")
    args = parser.parse_args(argv)
    if args.nodes < 1 or args.duration <= 0:
        parser.error("--nodes must be at least 1 and --duration above 0")
    run = run_demo(args.seed, nodes=args.nodes, duration=args.duration, schedule=args.schedule)
    print(f"seed {run.seed}, schedule {args.schedule}:")
    print(run.schedule or "  (no faults)")
    print("  ".join(f"{kind}={count}" for kind, count in run.counts))
    print(f"trace {run.trace_hash}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

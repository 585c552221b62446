"""A conformance worker process: `python -m keel.conformance.worker`.

`keel conformance` runs seeds on every core by starting one worker per
core and feeding each one seed at a time. The protocol is JSON lines: the
parent writes `{"consensus": "raft", "seed": 17}` to the worker's stdin
(`"raft/lww"`: the data half, that store on that engine);
the worker runs that seed and writes one `SeedResult` as a JSON object to
stdout. It exits at the end of its input. JSON, not pickle, so nothing a
worker sends can run code in the parent.
"""

from __future__ import annotations

import functools
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

import attrs

from keel import plugins
from keel.conformance import data_suite
from keel.conformance.consensus_suite import run_seed
from keel.conformance.runner import SeedResult
from keel.contract import ConsensusPlugin, Kind, StorePlugin

__all__ = ["main", "run_request"]


@functools.cache
def _engine(name: str) -> ConsensusPlugin:
    engine: ConsensusPlugin = plugins.load().get(Kind.CONSENSUS, name, field="--consensus")
    return engine


@functools.cache
def _store(name: str) -> StorePlugin:
    store: StorePlugin = plugins.load().get(Kind.STORE, name, field="--store")
    return store


def run_request(request: dict[str, Any]) -> dict[str, Any]:
    """Run the seed one request names; the result as a JSON object.

    An exception from the engine under test is that seed's violation, with
    where it was raised; it does not end the worker.
    """
    seed = int(request["seed"])
    started = time.perf_counter()
    try:
        consensus, _, store = str(request["consensus"]).partition("/")
        if store:
            result = data_suite.run_seed(_engine(consensus), _store(store), seed)
        else:
            result = run_seed(_engine(consensus), seed)
    except Exception as exc:  # an engine bug, reported as the seed's violation
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        where = f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}"
        result = SeedResult(seed=seed, operations=0, violation=f"raised {type(exc).__name__}: {exc} ({where})")
    return attrs.asdict(attrs.evolve(result, elapsed=time.perf_counter() - started))


def main(stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    for line in stdin:
        if line.strip():
            stdout.write(json.dumps(run_request(json.loads(line))) + "\n")
            stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

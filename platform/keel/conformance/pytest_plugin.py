"""pytest plugin: seeded, replayable randomized tests.

A test that takes the `seed` fixture gets one integer seed. With
`@pytest.mark.seeds(n)` it runs once per seed `0 … n-1` (`--seeds N` changes
the count for the whole run); without it, it runs with one seed derived from
its node id, so CI is repeatable. `--seed N` runs every seeded test with seed
N only. When a seeded test fails, its report ends with the one command that
replays it:

    replay: pytest 'tests/sim/test_loop.py::test_same_seed_same_trace' --seed=17

A test that takes the `consensus_plugin` fixture runs once per installed
consensus engine (`--consensus NAME`, repeatable, narrows that), getting
its `ConsensusPlugin` registration. The consensus conformance suite
(`keel.conformance.suite`) is such a test; plugin authors run it against
their own engine with

    pytest --pyargs keel.conformance.suite --consensus NAME

A test that takes the `store_plugin` fixture runs once per installed store
(`--store NAME`, repeatable, narrows that), getting its `StorePlugin`
registration: `pytest --pyargs keel.conformance.suite --store NAME` checks a
store author's plugin.
"""

from __future__ import annotations

import shlex
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

__all__ = ["replay_command"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("keel", "keel seeded tests")
    group.addoption("--seed", type=int, default=None, help="run every seeded test with this seed only")
    group.addoption("--seeds", type=int, default=None, help="seeds per test marked @pytest.mark.seeds(n), instead of n")
    group.addoption("--consensus", action="append", default=None, metavar="NAME",
                    help="run consensus conformance tests against this engine only (repeatable)")
    group.addoption("--store", action="append", default=None, metavar="NAME",
                    help="run store conformance tests against this store only (repeatable)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "seeds(n): run this test once per seed 0..n-1 (the `seed` fixture)")
    config.addinivalue_line("markers", "conformance: a conformance check; `make conformance` runs these with many seeds")
    if config.getoption("consensus"):
        _installed("consensus", config.getoption("consensus"))  # a misspelled name is a usage error, before collection
    if config.getoption("store"):
        _installed("store", config.getoption("store"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for kind in ("consensus", "store"):
        if f"{kind}_plugin" in metafunc.fixturenames:
            found = _installed(kind, metafunc.config.getoption(kind))
            metafunc.parametrize(f"{kind}_plugin", found, ids=[p.name for p in found])
    if "seed" not in metafunc.fixturenames:
        return
    forced = metafunc.config.getoption("seed")
    marker = metafunc.definition.get_closest_marker("seeds")
    if forced is not None:
        seeds = [forced]
    elif marker is not None:
        count = metafunc.config.getoption("seeds") or int(marker.args[0])
        seeds = list(range(count))
    else:
        seeds = [zlib.crc32(metafunc.definition.nodeid.encode()) % 10_000]
    metafunc.parametrize("seed", seeds, ids=[str(s) for s in seeds])


def _installed(kind_name: str, asked: list[str] | None) -> list[Any]:
    """The installed plugins of one kind (`consensus`, `store`), or those `asked` for by name."""
    from keel import plugins  # noqa: PLC0415 - only sessions with conformance tests load plugins
    from keel.contract import Kind  # noqa: PLC0415

    kind = Kind(kind_name)
    loaded = plugins.load()
    names = asked or list(loaded.names(kind))
    if not names:
        raise pytest.UsageError(f"no {kind_name} plugin is installed; the {kind_name} conformance tests need one")
    try:
        return [loaded.get(kind, name, field=f"--{kind_name}") for name in names]
    except Exception as exc:  # a ConfigError naming the installed engines
        raise pytest.UsageError(str(exc)) from None


def replay_command(nodeid: str, seed: int) -> str:
    """The command that runs one seeded test again with one seed."""
    base = nodeid.split("[", 1)[0]
    return f"pytest {shlex.quote(base)} --seed={seed}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    funcargs = getattr(item, "funcargs", {})
    if report.failed and "seed" in funcargs:
        report.sections.append(("seed", f"replay: {replay_command(item.nodeid, funcargs['seed'])}"))

"""keel.sim stays sans-I/O: no real clocks, sockets, threads, files or global randomness."""

from __future__ import annotations

import ast
import pathlib

import keel.sim

FORBIDDEN_MODULES = {"trio", "socket", "time", "threading", "os", "asyncio", "subprocess"}
RANDOM_ALLOWED = {"Random"}  # only seeded instances; module-level functions share hidden global state


def sources() -> list[pathlib.Path]:
    return sorted(pathlib.Path(keel.sim.__file__).parent.glob("*.py"))


def test_simulator_imports_no_io_modules():
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not roots & FORBIDDEN_MODULES, f"{path.name}:{node.lineno} imports {sorted(roots & FORBIDDEN_MODULES)}"


def test_simulator_uses_only_seeded_random_instances():
    for path in sources():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "random":
                raise AssertionError(f"{path.name}:{node.lineno} imports names from random")
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "random":
                assert node.attr in RANDOM_ALLOWED, f"{path.name}:{node.lineno} uses random.{node.attr}"

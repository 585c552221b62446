"""Every hookspec's docstring is its contract (STYLE §4), and this test holds it to that.

A spec's docstring gives a summary, when the hook is called, every parameter
(`Args:`), the return value (`Returns:`), the keel errors it may raise
(`Raises:`) and the contract version that introduced it (`Since: contract
X.Y`). `firstresult` specs say they stop at the first non-None result.
Hooks are named `keel_…` and are plain functions: hooks are synchronous.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import pluggy
import pytest

from keel import CONTRACT_VERSION, PROJECT, hookspecs

SPEC_MARK = f"{PROJECT}_spec"  # the attribute pluggy's HookspecMarker sets
SECTIONS = ("Args:", "Returns:", "Raises:")
SINCE = re.compile(r"^\s*Since: contract (\d+)\.(\d+)\s*$", re.MULTILINE)


def version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def section(doc: str, title: str) -> str:
    """The indented block under `title`, up to the next section or the end."""
    match = re.search(rf"^{re.escape(title)}\n((?:[ \t]+.*\n?|\n)*)", doc, re.MULTILINE)
    return match.group(1) if match else ""


def contract_problems(name: str, function: Callable[..., Any], opts: dict[str, Any]) -> list[str]:
    """What the spec's name, signature or docstring lacks; empty when it keeps the contract."""
    problems = []
    if not name.startswith("keel_"):
        problems.append("name does not start with keel_")
    if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
        problems.append("is async; hooks are synchronous")
    doc = inspect.getdoc(function) or ""
    lines = doc.splitlines()
    if not lines or not lines[0].strip().endswith("."):
        problems.append("has no one-line summary")
    if not re.search(r"^Called\b", doc, re.MULTILINE):
        problems.append("does not say when it is called (a paragraph starting 'Called')")
    for title in SECTIONS:
        if not section(doc, title).strip():
            if title != "Args:" or inspect.signature(function).parameters:
                problems.append(f"has no {title} section")
    args = section(doc, "Args:")
    for parameter in inspect.signature(function).parameters:
        if not re.search(rf"^\s+{re.escape(parameter)}:", args, re.MULTILINE):
            problems.append(f"does not describe parameter {parameter!r} under Args:")
    since = SINCE.findall(doc)
    if len(since) != 1:
        problems.append("has no single 'Since: contract X.Y' line")
    elif (int(since[0][0]), int(since[0][1])) > version(CONTRACT_VERSION):
        problems.append(f"claims contract {'.'.join(since[0])}, newer than this keel's {CONTRACT_VERSION}")
    if opts.get("firstresult") and "stops at the first non-None result" not in " ".join(doc.split()):
        problems.append("is firstresult but does not say it stops at the first non-None result")
    return problems


def specs() -> list[tuple[str, Callable[..., Any], dict[str, Any]]]:
    found = []
    for name, value in vars(hookspecs).items():
        opts = getattr(value, SPEC_MARK, None)
        if opts is not None:
            found.append((name, value, opts))
    return found


SPECS = specs()


def test_the_hookspecs_module_declares_the_known_hooks() -> None:
    names = {name for name, _, _ in SPECS}
    assert {"keel_transports", "keel_consensus_engines", "keel_stores", "keel_node_started"} <= names


def test_every_function_in_hookspecs_is_a_spec() -> None:
    """A helper left in the module would be mistaken for a hook by readers, not by pluggy."""
    functions = {name for name, value in vars(hookspecs).items() if inspect.isfunction(value) and value.__module__ == hookspecs.__name__}
    assert functions == {name for name, _, _ in SPECS}


@pytest.mark.parametrize(("name", "function", "opts"), SPECS, ids=[name for name, _, _ in SPECS])
def test_every_hookspec_docstring_is_a_complete_contract(name: str, function: Callable[..., Any], opts: dict[str, Any]) -> None:
    assert contract_problems(name, function, opts) == []


def test_every_hookspec_is_registered_with_pluggy() -> None:
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(hookspecs)
    for name, _, _ in SPECS:
        assert getattr(manager.hook, name).spec is not None, name


# The checker itself must catch what it is meant to catch.

hookspec = pluggy.HookspecMarker(PROJECT)


@hookspec
def keel_vague(node: Any, depth: int) -> None:
    """Observe something.

    Called sometimes.

    Args:
        node: the node.

    Returns:
        Nothing.

    Since: contract 99.0
    """


@hookspec(firstresult=True)
async def pick_one() -> Any:
    """Pick one."""


def test_the_checker_reports_each_missing_part() -> None:
    assert contract_problems("keel_vague", keel_vague, getattr(keel_vague, SPEC_MARK)) == [
        "has no Raises: section",
        "does not describe parameter 'depth' under Args:",
        f"claims contract 99.0, newer than this keel's {CONTRACT_VERSION}",
    ]
    assert contract_problems("pick_one", pick_one, getattr(pick_one, SPEC_MARK)) == [
        "name does not start with keel_",
        "is async; hooks are synchronous",
        "does not say when it is called (a paragraph starting 'Called')",
        "has no Returns: section",
        "has no Raises: section",
        "has no single 'Since: contract X.Y' line",
        "is firstresult but does not say it stops at the first non-None result",
    ]

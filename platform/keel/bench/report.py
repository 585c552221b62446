"""docs/benchmarks.md: the figures, the machine, and the command that made them."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path
from typing import Any

__all__ = ["machine", "write_docs"]

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": f"{platform.system()} {platform.machine()}",
        "cpus": os.cpu_count(),
    }


def _table(section: dict[str, Any]) -> list[str]:
    rows = ["| figure | value |", "|---|---|"]
    rows += [f"| `{key}` | {value} |" for key, value in section.items()]
    return rows


def _side_by_side(engines: dict[str, dict[str, Any]]) -> list[str]:
    names = list(engines)
    figures = list(dict.fromkeys(key for section in engines.values() for key in section))
    rows = ["| figure | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    rows += [f"| `{key}` | " + " | ".join(str(engines[n].get(key, "")) for n in names) + " |" for key in figures]
    return rows


def write_docs(path: Path, results: dict[str, Any], command: str) -> None:
    """Record the measured sections in `path` (between the bench markers), keeping the prose around them.

    Each section says when and how it was measured, so `keel bench client
    --write-docs` replaces the client's figures and keeps the others'.
    """
    measured = (f"Measured {datetime.date.today().isoformat()} with `{command}` on "
                f"{results['machine']['system']}, {results['machine']['cpus']} CPUs, "
                f"{results['machine']['implementation']} {results['machine']['python']}.")
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    head, tail, sections = text, "", {}
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        old, _, tail = rest.partition(END)
        sections = _sections(old)
    for name, section in results.items():
        if name != "machine":
            table = _side_by_side(section) if name == "core" else _table(section)
            sections[name] = [measured, "", *table]
    lines = [BEGIN]
    for name, body in sections.items():
        lines += [f"### {name}", "", *body, ""]
    lines.append(END)
    if not head:
        head = "# Benchmarks\n\n"
    path.write_text(head + "\n".join(lines) + (tail or "\n"), encoding="utf-8")


def _sections(block: str) -> dict[str, list[str]]:
    """The `### name` sections of a measured block, each as its lines without the heading and blank edges."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in block.splitlines():
        if line.startswith("### "):
            current = sections[line[4:].strip()] = []
        elif current is not None:
            current.append(line)
    for name, body in sections.items():
        while body and not body[0].strip():
            body.pop(0)
        while body and not body[-1].strip():
            body.pop()
        sections[name] = body
    return sections

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
    """Replace the measured part of `path` (between the bench markers), keeping the prose around it."""
    lines = [
        BEGIN,
        f"Measured {datetime.date.today().isoformat()} with `{command}` on "
        f"{results['machine']['system']}, {results['machine']['cpus']} CPUs, "
        f"{results['machine']['implementation']} {results['machine']['python']}.",
        "",
    ]
    for name, section in results.items():
        if name == "machine":
            continue
        table = _side_by_side(section) if name == "core" else _table(section)
        lines += [f"### {name}", "", *table, ""]
    lines.append(END)
    block = "\n".join(lines)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + block + tail
    else:
        text = (text or "# Benchmarks\n\n") + block + "\n"
    path.write_text(text, encoding="utf-8")

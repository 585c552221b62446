"""docs/benchmarks.md: each measured section is replaced alone, with the prose and the other sections kept."""

from __future__ import annotations

from pathlib import Path

from keel.bench.report import BEGIN, END, write_docs

MACHINE = {"python": "3.11.7", "implementation": "CPython", "system": "Linux x86_64", "cpus": 2}


def test_writing_one_section_keeps_the_others_and_the_prose(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nProse before.\n\n" + BEGIN + "\n" + END + "\n\nProse after.\n")
    write_docs(doc, {"machine": MACHINE, "wire": {"encode_per_s": 100}}, "keel bench wire")
    write_docs(doc, {"machine": MACHINE, "client": {"blocking_p50_ms": 4.2}}, "keel bench client")
    write_docs(doc, {"machine": MACHINE, "client": {"blocking_p50_ms": 3.9}}, "keel bench client")
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nProse before.\n\n" + BEGIN)
    assert text.endswith(END + "\n\nProse after.\n")
    assert text.count("### wire") == 1 and "| `encode_per_s` | 100 |" in text
    assert text.count("### client") == 1 and "| `blocking_p50_ms` | 3.9 |" in text and "4.2" not in text
    assert "with `keel bench wire`" in text and "with `keel bench client`" in text


def test_a_document_without_markers_gets_a_block_at_its_end(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    write_docs(doc, {"machine": MACHINE, "wire": {"encode_per_s": 100}}, "keel bench wire")
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\n" + BEGIN) and text.rstrip().endswith(END)

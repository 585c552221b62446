"""Helpers shared by the record file's tests: writes, reopening, a crash image of the files."""

from __future__ import annotations

import shutil
from pathlib import Path

from keel.data.records import RecordFile, Write

NODE = "data-1"
BUCKET = "default"


def puts(partition: int, keys: range, *, tag: bytes = b"v", bucket: str = BUCKET) -> list[Write]:
    """One write per key `k<i>`, each record naming its key and `tag`."""
    return [Write(bucket, partition, b"k%d" % i, b"%s:%d" % (tag, i)) for i in keys]


def crash_image(path: Path, into: Path) -> Path:
    """Copy the database and its WAL as they are now, while open: what a SIGKILL would leave on disk."""
    into.mkdir()
    for suffix in ("", "-wal"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            shutil.copyfile(source, into / source.name)
    return into / path.name


def everything(records: RecordFile, bucket: str, partition: int, *, limit: int = 7) -> list[tuple[bytes, bytes]]:
    """Every (key, record) of a partition, read page by page."""
    out, after = [], None
    while True:
        page = records.scan(bucket, partition, after, limit=limit)
        out.extend(page.items)
        if page.resume is None:
            return out
        after = page.resume

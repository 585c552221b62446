"""The few file operations that make bytes durable, shared by the log and the snapshot store.

A write is durable once its file is fsynced; a file's *name* (created,
renamed or deleted) is durable once its directory is fsynced. A file that must
appear whole or not at all is written under a temporary name, fsynced, then
renamed over its final name: a rename is atomic, so a crash leaves either the
old file or the complete new one, plus at worst a temporary file to delete.

Everything here blocks; a Trio caller runs it in `trio.to_thread.run_sync`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["TEMP_SUFFIX", "remove_files", "replace_atomically", "sync_directory", "sync_file", "write_all"]

TEMP_SUFFIX = ".tmp"  # a file being built; a crash may leave one behind, and its owner deletes it on open


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write every byte of `data` to `fd`; `os.write` may write fewer than asked."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def sync_file(fd: int) -> None:
    """Make what was written to `fd` durable.

    fdatasync suffices: it also flushes the file size, which an append
    changes, and skips metadata such as the modification time.
    """
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:  # platforms without fdatasync (macOS) offer only fsync
        os.fsync(fd)


def sync_directory(directory: Path) -> None:
    """Make the names in `directory` durable (files created, renamed or deleted there)."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomically(path: Path, chunks: Iterable[bytes]) -> None:
    """Make `path` hold exactly `chunks`, durably, with no moment where it holds less.

    Writes a temporary file beside it, fsyncs it, renames it over `path` and
    fsyncs the directory.
    """
    temp = path.with_name(path.name + TEMP_SUFFIX)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for chunk in chunks:
            write_all(fd, chunk)
        # A full fsync, not fdatasync: the rename must never expose a file whose
        # size or blocks are not yet on disk.
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
    sync_directory(path.parent)


def remove_files(paths: Iterable[Path]) -> bool:
    """Delete `paths` in order (a missing one is fine); return whether any was deleted.

    The caller fsyncs the directory when the deletions must be durable.
    """
    removed = False
    for path in paths:
        try:
            path.unlink()
            removed = True
        except FileNotFoundError:
            pass
    return removed

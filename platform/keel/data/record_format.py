"""What makes a sqlite3 file a keel record file, and the checks `RecordFile.open` runs before trusting one.

A record file is a sqlite database whose header's `application_id` is
keel's, with a `meta` table naming the format, its version and the node
whose records it holds, and the `records` table (`keel.data.records`).
Every refusal is a `StorageError` whose one line starts with the file's
path. Everything here blocks.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path

from keel.errors import StorageError

__all__ = ["APPLICATION_ID", "FORMAT", "FORMAT_VERSION", "connect", "create", "fresh", "lock", "verify"]

APPLICATION_ID = 0x6B65656C  # "keel" in ASCII; sqlite's header field that says which application owns a file
FORMAT = "keel.records"  # the meta table's marker
FORMAT_VERSION = 1  # bump when the schema or a stored value's meaning changes
SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every sqlite 3 database
BUSY_TIMEOUT_S = 5.0  # seconds sqlite retries a lock; only a checkpoint or recovery holds one briefly

SCHEMA = (
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value NOT NULL) WITHOUT ROWID",
    "CREATE TABLE records (bucket TEXT NOT NULL, partition INTEGER NOT NULL, slot INTEGER NOT NULL, "
    "key BLOB NOT NULL, record BLOB NOT NULL, digest BLOB NOT NULL, "
    "PRIMARY KEY (bucket, partition, slot, key)) WITHOUT ROWID",
)


def lock(path: Path) -> int:
    """Take the lock file beside `path` (an open descriptor to close on release)."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageError(f"{path}: cannot open the record file: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise StorageError(f"{path}: the record file is open elsewhere ({lock_path.name} is locked)") from None
    return fd


def fresh(path: Path) -> bool:
    """Whether there is no record file yet: none at all, or an empty one (a crash before the first commit)."""
    try:
        with open(path, "rb") as file:
            head = file.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        return True
    except OSError as exc:
        raise StorageError(f"{path}: cannot read the record file: {exc.strerror or exc}") from None
    if not head:
        return True
    if head != SQLITE_MAGIC:
        raise StorageError(f"{path}: not a keel record file (not a sqlite database: it starts with {head[:8]!r})")
    return False


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode, usable from any thread, syncing every commit."""
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise StorageError(f"{path}: cannot open the record file: {exc}") from None
    db.execute("PRAGMA synchronous = FULL")
    return db


def create(db: sqlite3.Connection, path: Path, node: str) -> int:
    """Make an empty file `node`'s record file; the high water it starts from (0)."""
    # One transaction: a crash leaves either an empty file (taken as new) or a whole record file.
    try:
        db.execute("BEGIN IMMEDIATE")
        for statement in SCHEMA:
            db.execute(statement)
        db.executemany("INSERT INTO meta VALUES (?, ?)",
                       [("format", FORMAT), ("version", FORMAT_VERSION), ("node", node), ("high_water", 0)])
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        raise StorageError(f"{path}: cannot create the record file: {exc}") from None
    try:
        _sync_directory(path.parent)  # the new file's name
    except OSError as exc:
        raise StorageError(f"{path}: cannot make the new record file durable: {exc.strerror or exc}") from None
    return 0


def verify(db: sqlite3.Connection, path: Path, node: str, *, check: bool) -> int:
    """The stored high water, once the file proves to be `node`'s record file."""
    (app,) = db.execute("PRAGMA application_id").fetchone()
    if app != APPLICATION_ID:
        raise StorageError(f"{path}: not a keel record file (a sqlite database with application_id {app:#x}, "
                           f"keel's is {APPLICATION_ID:#x})")
    if check:
        problems = [" ".join(str(row[0]).split()) for row in db.execute("PRAGMA quick_check(3)")]
        if problems != ["ok"]:
            raise StorageError(f"{path}: damaged: {'; '.join(problems)}")
    meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
    if meta.get("format") != FORMAT:
        raise StorageError(f"{path}: not a keel record file (format marker {meta.get('format')!r})")
    if meta.get("version") != FORMAT_VERSION:
        raise StorageError(f"{path}: record file format {meta.get('version')!r}; "
                           f"this keel reads format {FORMAT_VERSION}")
    if meta.get("node") != node:
        raise StorageError(f"{path}: holds the records of node {meta.get('node')!r}, not {node!r}; "
                           f"each data node needs its own file")
    high_water = meta.get("high_water")
    if type(high_water) is not int or high_water < 0:
        raise StorageError(f"{path}: damaged: high water {high_water!r} is not a non-negative int")
    return high_water


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

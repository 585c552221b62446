"""A data node's records on disk: one sqlite3 file, written in group commits.

Theory of operation. The file holds one table of records keyed by
`(bucket, partition, slot, key)`, each the record's canonical CBOR (opaque
here) with its 16-byte digest (`keel.data.merkle.record_digest`), and a
`meta` table: the format marker and version, the node id, and the hybrid
clock's high water. `slot` is the key's hash (`keel.data.merkle.slot_of`),
so a partition is stored, and scanned, in slot order, not key order: one
B-tree then serves lookups, resumable streaming, and the hash tree's
ranges (`entries`), where key order would need a second index on every
write. The cursor of a scan is still just the last key.

Durability. WAL mode with `synchronous=FULL`: a commit returns once its
frames are fsynced. `write_batch` applies any number of writes and the
clock's high water in one transaction, so many writers share one fsync
(`keel.data.group_commit` gathers them) and a timestamp is never durable
in a record without the high water that covers it. A failed write leaves
the file in a state nobody can know (a retried fsync may claim success for
data the kernel dropped), so the file refuses every later write with the
first error; the node restarts and reads what really reached the disk.

Refusals. `open` refuses, with a `StorageError` whose one line names the
file, anything that is not this node's record file
(`keel.data.record_format`): bytes that are not sqlite, a sqlite database
of another application (its `application_id` is not keel's), another
format version, another node's records, or a file that fails sqlite's
`quick_check` (damaged pages). A lock file beside it (`<name>.lock`,
flock) keeps two processes from opening the same file.

Threads. Every method blocks; a Trio caller runs them in
`trio.to_thread.run_sync`. Writes go through one connection and reads
through another (WAL lets them run side by side; a read sees the last
commit), each under its own lock, so calls from any threads are safe.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import attrs
from attrs.validators import instance_of, optional

from keel.data import record_format
from keel.data.merkle import DEFAULT_DEPTH, SLOT_BITS, MerkleTree, record_digest, slot_of
from keel.errors import StorageError

__all__ = [
    "SCAN_LIMIT",
    "Change",
    "Page",
    "PartitionCount",
    "RecordFile",
    "Write",
]

SCAN_LIMIT = 1000  # records per page of a scan; about 300 KB of 256-byte values
MAX_SQLITE_INT = 2**63 - 1
ALL_SLOTS = (0, 1 << SLOT_BITS)
T = TypeVar("T")

_UPSERT = ("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (bucket, partition, slot, key) "
           "DO UPDATE SET record = excluded.record, digest = excluded.digest")
_ONE = "WHERE bucket = ? AND partition = ? AND slot = ? AND key = ?"
_RANGE = "WHERE bucket = ? AND partition = ? AND slot >= ? AND slot < ? AND (slot, key) > (?, ?) ORDER BY slot, key"


def _partition(_: object, attribute: attrs.Attribute, value: int) -> None:
    if type(value) is not int or not 0 <= value <= MAX_SQLITE_INT:
        raise ValueError(f"{attribute.name}: {value!r} is not a partition number (an int 0..2**63-1)")


@attrs.frozen
class Write:
    """One record to store: `record` is its canonical bytes, or None to delete the key."""

    bucket: str = attrs.field(validator=instance_of(str))
    partition: int = attrs.field(validator=_partition)
    key: bytes = attrs.field(validator=instance_of(bytes))
    record: bytes | None = attrs.field(validator=optional(instance_of(bytes)))


@attrs.frozen
class Change:
    """What a write did to a key's digest; feed it to that partition's `MerkleTree.update`."""

    bucket: str
    partition: int
    key: bytes
    before: bytes | None  # the digest before the write; None: the key was absent
    after: bytes | None  # the digest after it; None: the key is absent now


@attrs.frozen
class Page:
    """One page of a scan, in slot order."""

    items: tuple[tuple[bytes, bytes], ...]  # (key, record) or (key, digest)
    resume: bytes | None  # pass as `after_key` for the next page; None: nothing follows


@attrs.frozen
class PartitionCount:
    """How many records one partition holds."""

    bucket: str
    partition: int
    records: int


class RecordFile:
    """One data node's records in a sqlite3 file; see the module docstring."""

    def __init__(self, path: Path, node: str, writer: sqlite3.Connection, reader: sqlite3.Connection,
                 lock_fd: int, high_water: int) -> None:
        """Use `RecordFile.open`."""
        self.path = path
        self.node = node
        self._writer, self._reader, self._lock_fd = writer, reader, lock_fd
        self._high_water = high_water
        self._write_lock, self._read_lock = threading.Lock(), threading.Lock()
        self._closed = False
        self._broken: StorageError | None = None

    @classmethod
    def open(cls, path: str | os.PathLike[str], node: str, *, check: bool = True) -> RecordFile:
        """Open `node`'s record file at `path`, creating it if it does not exist (or is empty).

        `check` runs sqlite's `quick_check` over the whole file (a few
        seconds per GB) so damaged pages stop the node now, not mid-request.

        Raises:
            StorageError: the file is not this node's record file, is
                damaged, is open elsewhere, or cannot be opened; the one-line
                message names the file.
        """
        path = Path(path)
        lock_fd = record_format.lock(path)
        try:
            fresh = record_format.fresh(path)
            writer = record_format.connect(path)
            try:
                if fresh:
                    high_water = record_format.create(writer, path, node)
                else:
                    high_water = record_format.verify(writer, path, node, check=check)
                writer.execute("PRAGMA journal_mode = WAL")
                reader = record_format.connect(path)
                reader.execute("PRAGMA query_only = ON")
            except sqlite3.DatabaseError as exc:
                writer.close()
                raise StorageError(f"{path}: damaged or not a keel record file ({exc})") from None
            except BaseException:
                writer.close()
                raise
        except BaseException:
            os.close(lock_fd)
            raise
        return cls(path, node, writer, reader, lock_fd, high_water)

    @property
    def high_water(self) -> int:
        """The hybrid clock's high water as last committed (0 for a new file)."""
        return self._high_water

    # --- writes --------------------------------------------------------------

    def write_batch(self, writes: Iterable[Write], high_water: int) -> tuple[Change, ...]:
        """Apply `writes` in order and persist `high_water`, in one transaction; durable on return.

        Returns:
            One `Change` per write, in order (a later write of the same key
            sees the earlier one).

        Raises:
            StorageError: the file could not be written; it refuses every
                later write too.
            ValueError: `high_water` is below the one stored (a clock went back).
        """
        writes = tuple(writes)
        if not all(isinstance(w, Write) for w in writes):
            raise TypeError("write_batch takes Write records")
        if type(high_water) is not int or not 0 <= high_water <= MAX_SQLITE_INT:
            raise ValueError(f"high water {high_water!r} is not an int 0..2**63-1")
        with self._write_lock:
            self._check_writable()
            if high_water < self._high_water:
                raise ValueError(f"{self.path}: high water {high_water} is below the stored {self._high_water}")
            try:
                changes = self._transaction(lambda db: self._apply_all(db, writes, high_water))
            except sqlite3.Error as exc:
                self._broken = StorageError(f"{self.path}: cannot write records: {exc}")
                raise self._broken from None
            self._high_water = high_water
            return changes

    def drop_partition(self, bucket: str, partition: int) -> int:
        """Delete every record of one partition in one transaction; return how many there were.

        Raises:
            StorageError: the file could not be written; it refuses every later write too.
        """
        with self._write_lock:
            self._check_writable()
            try:
                return self._transaction(lambda db: db.execute(
                    "DELETE FROM records WHERE bucket = ? AND partition = ?", (bucket, partition)).rowcount)
            except sqlite3.Error as exc:
                self._broken = StorageError(f"{self.path}: cannot drop {bucket}/{partition}: {exc}")
                raise self._broken from None

    def _transaction(self, body: Callable[[sqlite3.Connection], T]) -> T:
        db = self._writer
        db.execute("BEGIN IMMEDIATE")
        try:
            result = body(db)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the first error is the one to report; the file is refused from now on anyway
            raise
        return result

    def _apply_all(self, db: sqlite3.Connection, writes: tuple[Write, ...], high_water: int) -> tuple[Change, ...]:
        changes = []
        for w in writes:
            where = (w.bucket, w.partition, slot_of(w.key), w.key)
            row = db.execute(f"SELECT digest FROM records {_ONE}", where).fetchone()
            before = row[0] if row is not None else None
            if w.record is None:
                after = None
                if before is not None:
                    db.execute(f"DELETE FROM records {_ONE}", where)
            else:
                after = record_digest(w.record)
                if after != before:
                    db.execute(_UPSERT, (*where, w.record, after))
            changes.append(Change(w.bucket, w.partition, w.key, before, after))
        if high_water != self._high_water:
            db.execute("UPDATE meta SET value = ? WHERE name = 'high_water'", (high_water,))
        return tuple(changes)

    # --- reads ---------------------------------------------------------------

    def get(self, bucket: str, partition: int, key: bytes) -> bytes | None:
        """The record stored for `key`, or None."""
        row = self._read_one(f"SELECT record FROM records {_ONE}", (bucket, partition, slot_of(key), key))
        return row[0] if row is not None else None

    def digest(self, bucket: str, partition: int, key: bytes) -> bytes | None:
        """The digest of the record stored for `key`, or None."""
        row = self._read_one(f"SELECT digest FROM records {_ONE}", (bucket, partition, slot_of(key), key))
        return row[0] if row is not None else None

    def scan(self, bucket: str, partition: int, after_key: bytes | None = None, *, limit: int = SCAN_LIMIT,
             slots: tuple[int, int] = ALL_SLOTS) -> Page:
        """Up to `limit` `(key, record)` pairs of a partition, in slot order, after `after_key`.

        Resume from `page.resume`, in this or a later incarnation; records
        written meanwhile behind the cursor are not seen, ones ahead of it
        are. `slots` narrows the scan to the slots `[lo, hi)` (a hash tree
        node's range).
        """
        return self._page("record", bucket, partition, after_key, limit, slots)

    def digests(self, bucket: str, partition: int, after_key: bytes | None = None, *,
                limit: int = SCAN_LIMIT) -> Page:
        """As `scan`, with each record's digest in place of the record."""
        return self._page("digest", bucket, partition, after_key, limit, ALL_SLOTS)

    def entries(self, bucket: str, partition: int, lo: int, hi: int) -> tuple[tuple[bytes, bytes], ...]:
        """Every `(key, digest)` of a partition with its slot in `[lo, hi)`, in slot order (a tree sync's loader)."""
        return self._read_all(f"SELECT key, digest FROM records {_RANGE}", (bucket, partition, lo, hi, -1, b""))

    def tree(self, bucket: str, partition: int, depth: int = DEFAULT_DEPTH) -> MerkleTree:
        """The hash tree of a partition, built page by page (memory bounded by a page and the tree)."""
        def pages() -> Iterable[tuple[bytes, bytes]]:
            after = None
            while True:
                page = self.digests(bucket, partition, after)
                yield from page.items
                if page.resume is None:
                    return
                after = page.resume

        return MerkleTree.build(pages(), depth)

    def count(self) -> int:
        """How many records the file holds (a scan of the table)."""
        return self._read_one("SELECT count(*) FROM records", ())[0]

    def partition_counts(self) -> tuple[PartitionCount, ...]:
        """Records held per partition, in (bucket, partition) order; partitions without records are left out."""
        rows = self._read_all("SELECT bucket, partition, count(*) FROM records GROUP BY bucket, partition "
                              "ORDER BY bucket, partition", ())
        return tuple(PartitionCount(*row) for row in rows)

    def _page(self, column: str, bucket: str, partition: int, after_key: bytes | None, limit: int,
              slots: tuple[int, int]) -> Page:
        if type(limit) is not int or limit < 1:
            raise ValueError(f"scan limit {limit!r} is not a positive int")
        after = (-1, b"") if after_key is None else (slot_of(after_key), after_key)
        items = self._read_all(f"SELECT key, {column} FROM records {_RANGE} LIMIT ?",
                               (bucket, partition, *slots, *after, limit))
        return Page(items, items[-1][0] if len(items) == limit else None)

    def _read_one(self, sql: str, args: tuple[object, ...]) -> Any:
        rows = self._read_all(sql, args)
        return rows[0] if rows else None

    def _read_all(self, sql: str, args: tuple[object, ...]) -> tuple[Any, ...]:
        with self._read_lock:
            if self._closed:
                raise ValueError(f"{self.path}: the record file is closed")
            try:
                return tuple(self._reader.execute(sql, args).fetchall())
            except sqlite3.Error as exc:
                raise StorageError(f"{self.path}: cannot read records: {exc}") from None

    # --- lifecycle -----------------------------------------------------------

    def close(self) -> None:
        """Close the file and release its lock. Idempotent."""
        with self._write_lock, self._read_lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._reader.close()
                self._writer.close()
            finally:
                os.close(self._lock_fd)

    def __enter__(self) -> RecordFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_writable(self) -> None:
        if self._closed:
            raise ValueError(f"{self.path}: the record file is closed")
        if self._broken is not None:
            raise self._broken

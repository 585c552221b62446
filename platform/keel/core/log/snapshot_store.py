"""The snapshot store: a state machine snapshot on disk, saved atomically.

The driver saves a snapshot here before it tells the engine about it, so the
log's `CompactTo` (which forgets the entries the snapshot covers) is only
ever written once the snapshot is durable. A crash between the two leaves
the store ahead of the log: the driver then loads the store's snapshot,
skips the committed entries it already covers, and offers it to the engine
again (`Engine.snapshot_taken`), which compacts the log to it.

A snapshot is one file, `snapshot-<index, 20 digits>-<term, 20 digits>.snap`:

    magic        8 bytes        b"keel-snp"
    version      u32 big-endian the snapshot file format
    index, term  u64 each       as in the file name
    config size  u32            bytes of `SnapshotMeta.config`
    data size    u64            bytes of the state machine's data
    body crc     u32            CRC-32 (zlib) of config then data
    header crc   u32            CRC-32 of the 44 bytes before it
    config, then data

It is written under a temporary name, fsynced and renamed into place, so a
file with a snapshot's name is always complete; then the older snapshots
are deleted. `load` returns the newest snapshot. If that file is damaged,
`load` refuses (`StorageError`) rather than fall back to an older one: the
log may already be compacted past the older one, and a state machine
rebuilt from it would silently miss entries.

Not thread-safe: one caller at a time, which a Trio driver gets by running
each call in `trio.to_thread.run_sync` from one task.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from pathlib import Path

import attrs

from keel.consensus.log_ops import SnapshotMeta
from keel.core.log.durable_io import TEMP_SUFFIX, remove_files, replace_atomically, sync_directory
from keel.errors import StorageError

__all__ = ["SNAPSHOT_HEADER", "SnapshotStore", "StoredSnapshot"]

MAGIC = b"keel-snp"
FORMAT_VERSION = 1  # bump when the header or the body layout changes
SNAPSHOT_HEADER = struct.Struct(">8sIQQIQII")  # see the module docstring
MAX_CONFIG = 16 * 2**20  # bytes; a membership configuration is far smaller, so a larger size means damage
_NAME = re.compile(r"snapshot-(\d{20})-(\d{20})\.snap")
_TEMP_NAME = re.compile(r"snapshot-\d{20}-\d{20}\.snap" + re.escape(TEMP_SUFFIX))
_U64 = range(2**64)  # what the header's index and term fields hold


@attrs.frozen
class StoredSnapshot:
    """A snapshot as stored: where it stands in the log, and the state machine's bytes."""

    meta: SnapshotMeta
    data: bytes


class SnapshotStore:
    """The snapshots of one node's state machine, in their own directory."""

    def __init__(self, directory: Path) -> None:
        # Use `SnapshotStore.open`.
        self.directory = directory

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> SnapshotStore:
        """Open (creating if needed) the store in `directory`, deleting interrupted saves.

        Raises:
            StorageError: the directory cannot be created or read.
        """
        path = Path(directory)
        try:
            path.mkdir(parents=True, exist_ok=True)
            if remove_files(p for p in path.iterdir() if _TEMP_NAME.fullmatch(p.name)):
                sync_directory(path)
        except OSError as exc:
            raise StorageError(f"{path}: cannot open the snapshot directory: {exc.strerror or exc}") from exc
        return cls(path)

    def save(self, meta: SnapshotMeta, data: bytes) -> None:
        """Store a snapshot durably and make it the one `load` returns; older ones are deleted.

        Raises:
            ValueError: `meta` is older than the newest stored snapshot, or its
                index or term does not fit the file format.
            StorageError: the file could not be written.
        """
        if meta.index not in _U64 or meta.term not in _U64:
            raise ValueError(f"snapshot store: index {meta.index} and term {meta.term} must be in 0..2**64-1")
        if len(meta.config) > MAX_CONFIG:
            raise ValueError(f"snapshot store: config of {len(meta.config)} bytes exceeds {MAX_CONFIG}")
        stored = self._stored()
        if stored and stored[-1][0] > (meta.index, meta.term):
            newer = stored[-1][0]
            raise ValueError(f"snapshot store: snapshot {meta.index}/{meta.term} is older than the stored {newer[0]}/{newer[1]}")
        path = self.directory / f"snapshot-{meta.index:020d}-{meta.term:020d}.snap"
        header = _header(meta, data)
        try:
            replace_atomically(path, (header, meta.config, data))
            # No directory fsync for these: a deletion a crash undoes leaves an
            # older snapshot, which `load` deletes again.
            remove_files(p for _, p in stored if p != path)
        except OSError as exc:
            raise StorageError(f"{path}: cannot save the snapshot: {exc.strerror or exc}") from exc

    def load(self) -> StoredSnapshot | None:
        """The newest snapshot, or None if there is none; older ones are deleted.

        Raises:
            StorageError: the newest snapshot's file is unreadable or damaged
                (the message names the file and offset).
        """
        stored = self._stored()
        if not stored:
            return None
        _, path = stored[-1]
        snapshot = _read(path)
        try:
            remove_files(p for _, p in stored[:-1])
        except OSError as exc:
            raise StorageError(f"{self.directory}: cannot delete older snapshots: {exc.strerror or exc}") from exc
        return snapshot

    def _stored(self) -> list[tuple[tuple[int, int], Path]]:
        """Every snapshot file as ((index, term), path), oldest first."""
        try:
            names = list(self.directory.iterdir())
        except OSError as exc:
            raise StorageError(f"{self.directory}: cannot list snapshots: {exc.strerror or exc}") from exc
        found = []
        for path in names:
            match = _NAME.fullmatch(path.name)
            if match is not None:
                found.append(((int(match.group(1)), int(match.group(2))), path))
        return sorted(found)


def _header(meta: SnapshotMeta, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(meta.config))
    first = struct.pack(">8sIQQIQI", MAGIC, FORMAT_VERSION, meta.index, meta.term, len(meta.config), len(data), crc)
    return first + struct.pack(">I", zlib.crc32(first))


def _read(path: Path) -> StoredSnapshot:
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            raw = file.read(SNAPSHOT_HEADER.size)
            if len(raw) < SNAPSHOT_HEADER.size:
                raise StorageError(f"{path}: offset 0: {len(raw)} bytes, shorter than a snapshot header ({SNAPSHOT_HEADER.size})")
            magic, version, index, term, config_size, data_size, crc, header_crc = SNAPSHOT_HEADER.unpack(raw)
            if magic != MAGIC:
                raise StorageError(f"{path}: offset 0: not a keel snapshot (magic {magic!r}, expected {MAGIC!r})")
            if zlib.crc32(raw[:-4]) != header_crc:
                raise StorageError(f"{path}: offset 0: snapshot header fails its CRC")
            if version != FORMAT_VERSION:
                raise StorageError(f"{path}: offset 8: snapshot format {version}, this keel reads format {FORMAT_VERSION}")
            if path.name != f"snapshot-{index:020d}-{term:020d}.snap":
                raise StorageError(f"{path}: offset 12: header says index {index} term {term}, unlike the file name")
            # Sizes are checked against the file before anything that large is read.
            if config_size > MAX_CONFIG or SNAPSHOT_HEADER.size + config_size + data_size != size:
                raise StorageError(
                    f"{path}: offset {SNAPSHOT_HEADER.size}: header promises {config_size} + {data_size} bytes, "
                    f"the file holds {size - SNAPSHOT_HEADER.size}"
                )
            config = file.read(config_size)
            data = file.read(data_size)
    except OSError as exc:
        raise StorageError(f"{path}: cannot read the snapshot: {exc.strerror or exc}") from exc
    if zlib.crc32(data, zlib.crc32(config)) != crc:
        raise StorageError(f"{path}: offset {SNAPSHOT_HEADER.size}: snapshot body fails its CRC")
    return StoredSnapshot(meta=SnapshotMeta(index=index, term=term, config=config), data=data)

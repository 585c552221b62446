"""Segment files: how they are named, what their header says, how one is made.

A segment is `segment-<sequence number, 20 digits>.wal`: a 24-byte header,
then records (`keel.core.log.record`), the first of which is always a
`Checkpoint`. The header is

    magic    8 bytes        b"keel-wal", so a foreign file is refused by name
    version  u32 big-endian the segment format; a newer one is refused, not guessed at
    sequence u64 big-endian equal to the number in the file name
    crc      u32 big-endian CRC-32 (zlib) of the 20 bytes before it

Sequence numbers grow by one per segment. A new segment is built under a
temporary name, header and checkpoint fsynced, then renamed into place, so
a segment either exists complete with its checkpoint or does not exist.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import attrs

from keel.core.log.durable_io import TEMP_SUFFIX, replace_atomically
from keel.core.log.record import frame
from keel.errors import StorageError

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "SEGMENT_HEADER",
    "SegmentInfo",
    "create_segment",
    "list_segments",
    "list_temporary",
    "read_segment",
    "segment_path",
]

MAGIC = b"keel-wal"
FORMAT_VERSION = 1  # bump when the header, the record framing or a record's meaning changes
SEGMENT_HEADER = struct.Struct(">8sIQI")  # magic, format version, sequence number, CRC-32 of the first 20 bytes
_PREFIX, _SUFFIX = "segment-", ".wal"
_NAME = re.compile(r"segment-(\d{20})\.wal")
_TEMP_NAME = re.compile(r"segment-\d{20}\.wal" + re.escape(TEMP_SUFFIX))


@attrs.frozen
class SegmentInfo:
    """A segment of the log, as the writer keeps track of it."""

    sequence: int
    path: Path
    base: int  # its checkpoint's last index: entries up to here were written in earlier segments


def segment_path(directory: Path, sequence: int) -> Path:
    """Where segment `sequence` lives in `directory`."""
    return directory / f"{_PREFIX}{sequence:020d}{_SUFFIX}"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """Every segment file in `directory` as (sequence number, path), in sequence order.

    Files with other names are not the log's and are left alone.
    """
    found = []
    for path in directory.iterdir():
        match = _NAME.fullmatch(path.name)
        if match is not None:
            found.append((int(match.group(1)), path))
    return sorted(found)


def list_temporary(directory: Path) -> list[Path]:
    """Segments a crash interrupted while they were being built; never part of the log."""
    return sorted(path for path in directory.iterdir() if _TEMP_NAME.fullmatch(path.name))


def create_segment(directory: Path, sequence: int, checkpoint: bytes, *, max_record: int) -> Path:
    """Durably create segment `sequence` holding its header and the encoded `checkpoint`.

    The directory is fsynced before this returns, so the segment's name is durable too.
    """
    path = segment_path(directory, sequence)
    replace_atomically(path, (_header(sequence), frame(checkpoint, max_record=max_record)))
    return path


def read_segment(path: Path, sequence: int) -> bytes:
    """The whole file, after checking that its header is a segment header for `sequence`.

    Raises:
        StorageError: the file cannot be read, or its header is short, foreign,
            damaged, of another format version or of another sequence number.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StorageError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) < SEGMENT_HEADER.size:
        raise StorageError(f"{path}: offset 0: {len(data)} bytes, shorter than a segment header ({SEGMENT_HEADER.size})")
    magic, version, found, crc = SEGMENT_HEADER.unpack_from(data)
    if magic != MAGIC:
        raise StorageError(f"{path}: offset 0: not a keel log segment (magic {magic!r}, expected {MAGIC!r})")
    if zlib.crc32(data[: SEGMENT_HEADER.size - 4]) != crc:
        raise StorageError(f"{path}: offset 0: segment header fails its CRC")
    if version != FORMAT_VERSION:
        raise StorageError(f"{path}: offset 8: segment format {version}, this keel reads format {FORMAT_VERSION}")
    if found != sequence:
        raise StorageError(f"{path}: offset 12: header says segment {found}, the file name says {sequence}")
    return data


def _header(sequence: int) -> bytes:
    first = struct.pack(">8sIQ", MAGIC, FORMAT_VERSION, sequence)
    return first + struct.pack(">I", zlib.crc32(first))

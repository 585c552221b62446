"""Records: the length-prefixed, CRC-checked unit of the write-ahead log.

A record is a 12-byte header, then its body:

    length  u32 big-endian   bytes in the body
    body    u32 big-endian   CRC-32 (zlib) of the body
    header  u32 big-endian   CRC-32 of the 8 bytes before it

The header has its own CRC so that a damaged length is caught before it is
believed: without it, a flipped bit in the length of a record in the middle
of a file could claim a body running past the end of the file, which looks
exactly like a torn write at the tail, and recovery would cut every record
after it.

`scan` walks a file's records and stops at the first that fails, saying
whether that failure could be a torn tail. A write interrupted by a crash
leaves a prefix of what was written, or blocks of zeros where the file grew
but its data never reached the disk; so a failure is *torn* when the bad
record reaches the end of the file, or when only zeros follow it. Anything
else (a bad record with data after it) is corruption, and the caller refuses
to serve the file. A torn tail is indistinguishable from damage to a last
record that had been fully written; both are cut.

One harmless crash is refused all the same: an fsync interrupted after a
later page of its batch reached the disk but before an earlier one did
leaves a bad record with valid data after it. Nothing in that batch was
acknowledged, but records alone cannot tell it from damage to records that
were; the node refuses to start and names the spot.
"""

from __future__ import annotations

import struct
import zlib

import attrs

__all__ = ["HEADER", "MAX_RECORD", "Damage", "Scan", "frame", "scan"]

HEADER = struct.Struct(">III")  # body length, CRC-32 of the body, CRC-32 of the first 8 header bytes
MAX_RECORD = 32 * 2**20  # bytes of body; one entry as large as the largest frame (16 MiB) fits with room for its encoding


def frame(body: bytes, *, max_record: int = MAX_RECORD) -> bytes:
    """The record holding `body`: header, then body.

    Raises:
        ValueError: `body` is longer than `max_record`; the caller splits it.
    """
    if len(body) > max_record:
        raise ValueError(f"log record: body of {len(body)} bytes exceeds the maximum {max_record}")
    first = struct.pack(">II", len(body), zlib.crc32(body))
    return first + struct.pack(">I", zlib.crc32(first)) + body


@attrs.frozen
class Damage:
    """The first record that failed its checks."""

    offset: int  # where the record starts in the file
    reason: str  # what failed, for the error message
    torn: bool  # nothing valid follows it: it may be an interrupted write


@attrs.frozen
class Scan:
    """The records of a file up to its end or its first damaged record."""

    records: tuple[tuple[int, bytes], ...]  # (offset of the record, body), in file order
    damage: Damage | None  # None when the records end exactly at the end of the file


def scan(data: bytes, start: int, *, max_record: int = MAX_RECORD) -> Scan:
    """Read the records in `data` from offset `start`, checking every length and CRC."""
    records: list[tuple[int, bytes]] = []
    offset, end = start, len(data)
    while offset < end:
        damage = _check(data, offset, max_record)
        if damage is not None:
            return Scan(records=tuple(records), damage=damage)
        (length, _, _) = HEADER.unpack_from(data, offset)
        body_start = offset + HEADER.size
        records.append((offset, data[body_start : body_start + length]))
        offset = body_start + length
    return Scan(records=tuple(records), damage=None)


def _check(data: bytes, offset: int, max_record: int) -> Damage | None:
    end = len(data)
    if end - offset < HEADER.size:
        return Damage(offset, f"record header cut short ({end - offset} of {HEADER.size} bytes)", torn=True)
    length, body_crc, header_crc = HEADER.unpack_from(data, offset)
    if zlib.crc32(data[offset : offset + 8]) != header_crc:
        return Damage(offset, "record header fails its CRC", torn=_zeros_from(data, offset))
    if length > max_record:
        # The header CRC held, so this length was written as it stands: not a torn write.
        return Damage(offset, f"record length {length} exceeds the maximum {max_record}", torn=False)
    body_start = offset + HEADER.size
    if body_start + length > end:
        return Damage(offset, f"record body cut short ({end - body_start} of {length} bytes)", torn=True)
    if zlib.crc32(data[body_start : body_start + length]) != body_crc:
        return Damage(offset, "record body fails its CRC", torn=_zeros_from(data, body_start + length))
    return None


def _zeros_from(data: bytes, offset: int) -> bool:
    """Whether every byte from `offset` to the end is zero (true of an empty rest)."""
    return data.count(0, offset) == len(data) - offset

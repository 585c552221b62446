"""Recovery: reading a log directory back into a `LogState` when the log opens.

The rules, in order:

1. Temporary segments (a crash while one was being built) are deleted.
2. Segments are taken in sequence order. A gap in the sequence means a
   deletion of old segments was cut short by a crash (deletions are durable
   only at the directory fsync that follows them, in any order); every
   segment below the last gap was being deleted, so replay starts after it
   and those segments are deleted again.
3. Every record of every segment is checked (lengths, CRCs, decoding, the
   fold's rules). The first record of a segment must be its checkpoint; a
   later segment's checkpoint must agree with what came before it.
4. Only the last segment may end in a torn record (see `record.scan`); it is
   cut off the file, and the cut fsynced, before the log is used. Earlier
   segments were fsynced before their successor was created, so damage
   there, or damage with valid data after it anywhere, is corruption: the
   log refuses to open with a `StorageError` naming the file and offset.
5. Entries above the snapshot that the surviving segments cannot account
   for are corruption too (`Replay.finish`).
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from keel import wire
from keel.consensus.log_ops import LogState
from keel.core.log.durable_io import remove_files, sync_directory
from keel.core.log.record import Damage, scan
from keel.core.log.replay import Replay
from keel.core.log.segment import SEGMENT_HEADER, SegmentInfo, list_segments, list_temporary, read_segment
from keel.core.log.wal_ops import Checkpoint
from keel.errors import StorageError, WireError

__all__ = ["Found", "recover"]


@attrs.frozen
class Found:
    """What recovery found: the state, and the live segments (oldest first)."""

    state: LogState
    segments: tuple[SegmentInfo, ...]


def recover(directory: Path, *, max_record: int) -> Found | None:
    """Replay the log in `directory`; None when it holds no segment (a first boot).

    Raises:
        StorageError: a segment is unreadable or corrupt, or the segments do
            not add up to a log.
    """
    try:
        stale = list_temporary(directory)
        found = list_segments(directory)
    except OSError as exc:
        raise StorageError(f"{directory}: cannot list the log's segments: {exc.strerror or exc}") from exc
    if not found:
        _remove(directory, stale)
        return None
    chain_start = 0
    for i in range(1, len(found)):
        if found[i][0] != found[i - 1][0] + 1:
            chain_start = i
    chain = found[chain_start:]
    replay: Replay | None = None
    segments: list[SegmentInfo] = []
    cut: tuple[Path, Damage] | None = None
    for position, (sequence, path) in enumerate(chain):
        data = read_segment(path, sequence)
        result = scan(data, SEGMENT_HEADER.size, max_record=max_record)
        if result.damage is not None:
            last = position == len(chain) - 1
            # The checkpoint is written with the segment, atomically: it cannot be torn.
            if not (last and result.damage.torn and result.records):
                raise StorageError(f"{path}: offset {result.damage.offset}: {result.damage.reason}")
            cut = (path, result.damage)
        if not result.records:
            raise StorageError(f"{path}: offset {SEGMENT_HEADER.size}: segment holds no checkpoint")
        (offset, body), *rest = result.records
        checkpoint = _decode(body, f"{path}: offset {offset}")
        if not isinstance(checkpoint, Checkpoint):
            raise StorageError(f"{path}: offset {offset}: segment does not open with a checkpoint")
        if replay is None:
            replay = Replay.start(checkpoint, f"{path}: offset {offset}")
        else:
            replay.check(checkpoint, f"{path}: offset {offset}")
        segments.append(SegmentInfo(sequence=sequence, path=path, base=checkpoint.last_index))
        for offset, body in rest:
            where = f"{path}: offset {offset}"
            replay.apply(_decode(body, where), where)
    assert replay is not None  # the chain holds at least the last segment
    state = replay.finish(f"{chain[0][1]}")
    if cut is not None:
        path, damage = cut
        _cut(path, damage.offset)
    _remove(directory, stale + [path for _, path in found[:chain_start]])
    return Found(state=state, segments=tuple(segments))


def _decode(body: bytes, where: str) -> object:
    try:
        return wire.decode(body)
    except WireError as exc:
        # The CRC held, so these are the bytes that were written: another version wrote them, or a bug.
        raise StorageError(f"{where}: record does not decode: {exc}") from None


def _cut(path: Path, offset: int) -> None:
    """Drop a torn tail durably, before anything is appended after it."""
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, offset)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StorageError(f"{path}: offset {offset}: cannot cut the torn tail: {exc.strerror or exc}") from exc


def _remove(directory: Path, paths: list[Path]) -> None:
    try:
        if remove_files(paths):
            sync_directory(directory)
    except OSError as exc:
        raise StorageError(f"{directory}: cannot delete stale files: {exc.strerror or exc}") from exc

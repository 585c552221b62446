"""The durable log: a write-ahead log of a consensus engine's log operations.

Theory of operation. The log is a directory of segment files
(`keel.core.log.segment`), each a run of CRC-checked records
(`keel.core.log.record`). Every `LogOp` the engine asks for becomes one
record (an `Append` too large for one record becomes several), so replaying
the records in order with `LogState`'s rules (`keel.core.log.replay`) gives
back the state the engine left. Stable state (term and vote, or promised
ballot) is a record like any other, the last one winning on replay: it
becomes durable in the same fsync as the entries written with it, where a
separate file would cost a second fsync, a rename and a directory fsync on
every vote, just when an election wants them fast. Each segment opens with
a `Checkpoint` that repeats the stable state and the snapshot, so deleting
old segments never deletes the last word on either.

Writes and syncs. `write` only validates the operations (on the in-memory
`LogState`), encodes them and appends them to a memory buffer: it makes no
system call. `sync` hands the buffer to the OS in one write and makes it
durable with one fdatasync, so one fsync covers every `Ready` the driver
wrote since the last one (group commit). A write that returned before
`sync` was called is durable when `sync` returns.

Threads. `sync` blocks; a Trio driver runs it in `trio.to_thread.run_sync`
and may keep calling `write` meanwhile: a lock guards the state and the
buffer, and `sync` takes the buffer at its start, so a write made while a
sync runs is covered by the next sync (or by this one, if it landed first;
never by half). Syncs and `close` wait for each other.

Segments and compaction. When a sync leaves the current segment at or past
`segment_bytes`, it starts a new segment (built under a temporary name,
fsynced, renamed in, directory fsynced) whose checkpoint is the state as of
the end of the old one. After a sync has made a `CompactTo` durable, the
older segments are deleted up to the newest segment whose checkpoint's last
index the snapshot covers: replay can start at that checkpoint, and nothing
it cannot see is still needed (`keel.core.log.replay`). Deletion follows the
directory fsync that made the new segment durable, never precedes it.

Failures. A failed write or fsync leaves the file in a state nobody can
know (a retried fsync may report success for data it already dropped), so
the log refuses every later call with the first error; the node restarts
and recovery reads what really reached the disk. A `write` that breaks the
log rules (an engine bug) refuses later calls the same way, since its
operations may be half applied in memory.

Memory. The log keeps the live entries (those above the snapshot) in a
`LogState`, to validate operations and to decide compactions. The entries
are the engine's own objects, so this costs a list of references.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterable
from pathlib import Path

import attrs

from keel import wire
from keel.consensus.log_ops import Append, CompactTo, Entry, LogOp, LogState, Recovered, SaveStable
from keel.core.log.durable_io import remove_files, sync_directory, sync_file, write_all
from keel.core.log.record import MAX_RECORD, frame
from keel.core.log.recovery import recover
from keel.core.log.segment import SegmentInfo, create_segment
from keel.core.log.wal_ops import Checkpoint, Compacted
from keel.errors import StorageError

__all__ = ["DEFAULT_SEGMENT_BYTES", "LOCK_FILE", "DurableLog", "Taken"]

DEFAULT_SEGMENT_BYTES = 64 * 2**20  # bytes; few files to list and open, and a deleted segment frees a useful amount
LOCK_FILE = "wal.lock"  # held (flock) while a log is open, so two nodes never share a directory


@attrs.frozen
class Taken:
    """Writes detached by `DurableLog.take`, and the checkpoint a new segment would open with after them."""

    data: bytes
    mark: Checkpoint
    number: int  # takes are synced in this order


class DurableLog:
    """A consensus engine's log on disk; see the module docstring for the rules."""

    def __init__(self, directory: Path, lock_fd: int, *, segment_bytes: int, max_record: int) -> None:
        # Use `DurableLog.open`; this only sets the fields it fills in.
        self.directory = directory
        self._lock_fd: int | None = lock_fd
        self._segment_bytes = segment_bytes
        self._max_record = max_record
        self._mutex = threading.Lock()  # guards _state, _buffer, _failure
        self._sync_mutex = threading.Lock()  # one sync (or close) at a time; guards the files
        self._state = LogState()
        self._buffer = bytearray()
        self._failure: Exception | None = None  # the first error of a failed write or sync
        self._taken = self._synced = 0  # takes handed out, and synced, in order
        self._closed = False
        self._segments: list[SegmentInfo] = []
        self._fd: int | None = None  # the last segment, open for appending
        self._size = 0  # bytes handed to the OS for the last segment
        self._sealed: dict[Path, int] = {}  # bytes of each segment before the last
        self._recovered = Recovered()

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        max_record: int = MAX_RECORD,
    ) -> DurableLog:
        """Open (creating if needed) the log in `directory` and recover what it holds.

        Args:
            directory: the log's own directory; created on first boot.
            segment_bytes: a segment is closed at the first sync that finds it this large.
            max_record: bytes of one record's body; larger appends are split,
                and a longer record on disk is corruption.

        Raises:
            StorageError: the directory is unusable or in use by another open
                log, or a segment is corrupt (the message names file and offset).
        """
        if segment_bytes < 1 or max_record < 1:
            raise ValueError(f"durable log: segment_bytes {segment_bytes} and max_record {max_record} must be positive")
        path = Path(directory)
        lock_fd = _lock(path)
        log = cls(path, lock_fd, segment_bytes=segment_bytes, max_record=max_record)
        try:
            log._recover()
        except BaseException:
            log.close()
            raise
        return log

    def recovered(self) -> Recovered:
        """What the log held when it was opened: what the engine starts from."""
        return self._recovered

    @property
    def disk_bytes(self) -> int:
        """Bytes of the live segments on disk, without a system call or waiting for a sync (for status)."""
        return sum(self._sealed.values()) + self._size

    def segments(self) -> tuple[Path, ...]:
        """The segment files in use, oldest first (the last takes new records); waits for a running sync."""
        with self._sync_mutex:
            return tuple(segment.path for segment in self._segments)

    def write(self, ops: Iterable[LogOp]) -> None:
        """Apply `ops` in order; durable once a later `sync` returns.

        Raises:
            ValueError: an operation breaks the log rules (`LogState`), or one
                entry is too large for a record; the log is unusable after it.
            TypeError: not a log operation; the log is unusable after it.
            StorageError: an earlier sync failed.
        """
        with self._mutex:
            self._check_usable()
            try:
                for op in ops:
                    self._write_one(op)
            except Exception as exc:
                self._failure = exc
                raise

    def sync(self) -> None:
        """Make every write that returned before this call durable (blocking).

        Raises:
            StorageError: the write or fsync failed; the log is unusable after it.
        """
        self.sync_taken(self.take())

    def take(self) -> Taken:
        """Detach everything written so far, for `sync_taken` to make durable (no system call).

        A driver that must make something else durable first (a snapshot the
        log's `CompactTo` relies on) takes the writes at the moment it decides
        what goes first, so no later write slips into this sync.

        Raises:
            StorageError: an earlier sync failed.
        """
        with self._mutex:
            self._check_usable()
            data, self._buffer = self._buffer, bytearray()
            mark = Checkpoint(stable=self._state.stable, snapshot=self._state.snapshot,
                              last_index=self._state.last_index)
            self._taken += 1
            return Taken(data=bytes(data), mark=mark, number=self._taken)

    def sync_taken(self, taken: Taken) -> None:
        """Make what `take` detached durable (blocking); takes must be synced in the order taken.

        Raises:
            ValueError: an earlier take was not synced first.
            StorageError: the write or fsync failed; the log is unusable after it.
        """
        with self._sync_mutex:
            with self._mutex:
                self._check_usable()
                if taken.number != self._synced + 1:
                    raise ValueError(f"durable log: take {taken.number} synced after {self._synced}")
                self._synced = taken.number
            try:
                self._sync(bytearray(taken.data), taken.mark)
            except OSError as exc:
                failure = StorageError(f"{self.directory}: sync failed: {exc.strerror or exc}")
                with self._mutex:
                    self._failure = failure
                raise failure from exc

    def close(self) -> None:
        """Release the files. Writes not yet synced are dropped, as in a crash. Idempotent."""
        with self._sync_mutex:
            with self._mutex:
                self._closed = True
                self._buffer = bytearray()
            for fd in (self._fd, self._lock_fd):
                if fd is not None:
                    os.close(fd)  # closing the lock file releases the lock
            self._fd = self._lock_fd = None

    def __enter__(self) -> DurableLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- inside the mutex ----------------------------------------------------

    def _check_usable(self) -> None:
        if self._closed:
            raise ValueError("durable log: closed")
        if isinstance(self._failure, StorageError):
            raise StorageError(f"{self._failure} (the log is unusable after it)")
        if self._failure is not None:
            raise ValueError(f"durable log: unusable after an earlier error: {self._failure}")

    def _write_one(self, op: LogOp) -> None:
        _check_bytes(op)
        if isinstance(op, CompactTo):
            before = self._state.snapshot
            self._state.apply(op)
            if self._state.snapshot is before:
                return  # an older snapshot than the one kept: LogState ignored it, so does the log
            # An empty suffix reads the same either way; a non-empty one was kept.
            record = Compacted(snapshot=op.snapshot, keep_suffix=bool(self._state.entries), forced=op.keep_suffix)
            self._buffer += frame(wire.encode(record), max_record=self._max_record)
            return
        # Encode before applying, so an operation that cannot be written changes nothing.
        bodies = self._append_bodies(op.entries) if isinstance(op, Append) else [wire.encode(op)]
        records = [frame(body, max_record=self._max_record) for body in bodies]
        self._state.apply(op)
        for record in records:
            self._buffer += record

    def _append_bodies(self, entries: tuple[Entry, ...]) -> Iterable[bytes]:
        body = wire.encode(Append(entries))
        if len(body) <= self._max_record:
            yield body
        elif len(entries) == 1:
            raise ValueError(
                f"durable log: entry {entries[0].index} encodes to {len(body)} bytes, over max_record {self._max_record}"
            )
        else:
            # Split: each half is a valid Append, since the second follows on from the first. A
            # replacing Append split so is atomic only half by half; engines keep those far below
            # max_record (Paxos bounds what it holds uncommitted to its pipeline, 8 MiB by default).
            half = len(entries) // 2
            yield from self._append_bodies(entries[:half])
            yield from self._append_bodies(entries[half:])

    # --- inside the sync mutex -----------------------------------------------

    def _sync(self, data: bytearray, mark: Checkpoint) -> None:
        assert self._fd is not None  # usable means open
        if data:
            write_all(self._fd, data)
            self._size += len(data)
            sync_file(self._fd)
        if self._size >= self._segment_bytes:
            self._rotate(mark)
        self._delete_covered(mark)

    def _rotate(self, mark: Checkpoint) -> None:
        sequence = self._segments[-1].sequence + 1
        path = create_segment(self.directory, sequence, wire.encode(mark), max_record=self._max_record)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        os.close(self._fd)  # type: ignore[arg-type]  # open: _sync checked it
        self._sealed[self._segments[-1].path] = self._size
        self._fd, self._size = fd, os.fstat(fd).st_size
        self._segments.append(SegmentInfo(sequence=sequence, path=path, base=mark.last_index))

    def _delete_covered(self, mark: Checkpoint) -> None:
        # `mark.snapshot` is durable now: the sync that called this wrote it.
        covered = mark.snapshot.index if mark.snapshot is not None else 0
        start = max((i for i, segment in enumerate(self._segments) if segment.base <= covered), default=0)
        if start == 0:
            return
        doomed, self._segments = self._segments[:start], self._segments[start:]
        for segment in doomed:
            self._sealed.pop(segment.path, None)
        remove_files(segment.path for segment in doomed)
        sync_directory(self.directory)

    # --- opening ---------------------------------------------------------------

    def _recover(self) -> None:
        found = recover(self.directory, max_record=self._max_record)
        try:
            if found is None:  # first boot: an empty log starts with its first segment
                first = Checkpoint(stable=b"", snapshot=None, last_index=0)
                path = create_segment(self.directory, 1, wire.encode(first), max_record=self._max_record)
                self._segments = [SegmentInfo(sequence=1, path=path, base=0)]
            else:
                self._state = found.state
                self._segments = list(found.segments)
            path = self._segments[-1].path
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            self._size = os.fstat(self._fd).st_size
            self._sealed = {s.path: s.path.stat().st_size for s in self._segments[:-1]}
        except OSError as exc:
            raise StorageError(f"{self.directory}: cannot start the log: {exc.strerror or exc}") from exc
        self._recovered = self._state.recovered()


def _check_bytes(op: LogOp) -> None:
    """Refuse str where bytes belong: the codec would write it, and replay would then refuse the log."""
    if isinstance(op, SaveStable) and type(op.state) is not bytes:
        raise TypeError(f"durable log: stable state must be bytes, not {type(op.state).__name__}")
    if isinstance(op, CompactTo) and type(op.snapshot.config) is not bytes:
        raise TypeError(f"durable log: snapshot config must be bytes, not {type(op.snapshot.config).__name__}")
    if isinstance(op, Append):
        for entry in op.entries:
            if type(entry.data) is not bytes:
                raise TypeError(f"durable log: entry {entry.index} data must be bytes, not {type(entry.data).__name__}")


def _lock(directory: Path) -> int:
    try:
        created = not directory.exists()
        directory.mkdir(parents=True, exist_ok=True)
        if created:
            sync_directory(directory.parent)
        fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageError(f"{directory}: cannot open the log directory: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise StorageError(f"{directory}: the log is open elsewhere ({LOCK_FILE} is locked)") from None
    return fd

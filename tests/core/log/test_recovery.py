"""Recovery: torn tails are cut, corruption anywhere else refuses the log, interrupted deletions finish."""

from __future__ import annotations

import re
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from keel.consensus.log_ops import Append, CompactTo, SaveStable, SnapshotMeta, TruncateFrom
from keel.core.log import DurableLog
from keel.core.log.segment import FORMAT_VERSION, MAGIC, SEGMENT_HEADER
from keel.errors import StorageError

from .logs import entries, fold, reopen, segment_files, written

FIRST = [SaveStable(b"term 3, voted b"), Append(entries(1, 3, term=3))]
LAST = [Append(entries(4, 2, term=3))]  # its record is the file's last


@pytest.fixture
def two_batches(tmp_path: Path) -> tuple[Path, int, bytes]:
    """A log of two synced batches: its segment, where the last record starts, the file's bytes."""
    before, _ = written(tmp_path, [FIRST, LAST])
    (segment,) = segment_files(tmp_path)
    return segment, before, segment.read_bytes()


def offset_in(error: StorageError) -> int:
    match = re.search(r": offset (\d+): ", str(error))
    assert match is not None, f"no offset in {error}"
    return int(match.group(1))


def test_a_record_torn_at_any_byte_is_cut_and_the_prefix_survives(two_batches):
    segment, last_start, pristine = two_batches
    for size in range(last_start, len(pristine)):
        segment.write_bytes(pristine[:size])
        with DurableLog.open(segment.parent) as log:
            assert log.recovered() == fold(FIRST), f"torn at {size}"
            assert segment.stat().st_size == last_start, "the torn tail is cut off the file"
            log.write([Append(entries(4, 1, term=4))])
            log.sync()
        assert reopen(segment.parent) == fold(FIRST + [Append(entries(4, 1, term=4))])


def test_a_last_record_failing_its_crc_is_cut(two_batches):
    segment, last_start, pristine = two_batches
    damaged = bytearray(pristine)
    damaged[-1] ^= 0x01
    segment.write_bytes(damaged)
    assert reopen(segment.parent) == fold(FIRST)
    assert segment.stat().st_size == last_start


def test_zeros_where_the_file_grew_but_no_data_landed_are_cut(two_batches):
    segment, last_start, pristine = two_batches
    segment.write_bytes(pristine + bytes(4096))
    assert reopen(segment.parent) == fold(FIRST + LAST)
    segment.write_bytes(pristine[:last_start] + bytes(len(pristine) - last_start))
    assert reopen(segment.parent) == fold(FIRST)
    assert segment.stat().st_size == last_start


def test_a_corrupt_byte_before_the_last_record_refuses_the_log_naming_file_and_offset(two_batches):
    segment, last_start, pristine = two_batches
    for offset in range(last_start):
        damaged = bytearray(pristine)
        damaged[offset] ^= 0xFF
        segment.write_bytes(damaged)
        with pytest.raises(StorageError) as caught:
            DurableLog.open(segment.parent)
        assert str(caught.value).startswith(f"{segment}: offset ")
        assert offset_in(caught.value) <= offset, "the offset names the damaged record or header"
        assert segment.read_bytes() == damaged, "a refused log is left as it was found"
    segment.write_bytes(pristine)
    assert reopen(segment.parent) == fold(FIRST + LAST), "a refused open leaves the directory unlocked"


def test_a_bad_record_followed_by_valid_ones_refuses_the_log(tmp_path):
    sizes = written(tmp_path, [FIRST, LAST, [TruncateFrom(5)]])
    (segment,) = segment_files(tmp_path)
    damaged = bytearray(segment.read_bytes())
    damaged[sizes[0] + 20] ^= 0x10  # inside the body of the middle batch's record
    segment.write_bytes(damaged)
    with pytest.raises(StorageError, match="record body fails its CRC") as caught:
        DurableLog.open(tmp_path)
    assert offset_in(caught.value) == sizes[0]


def test_a_torn_tail_of_an_earlier_segment_is_corruption(tmp_path):
    written(tmp_path, [FIRST, LAST, [SaveStable(b"next")]], segment_bytes=1)
    first, *_ = segment_files(tmp_path)
    first.write_bytes(first.read_bytes()[:-3])
    with pytest.raises(StorageError, match=re.escape(f"{first}: offset ")):
        DurableLog.open(tmp_path)


def test_a_foreign_file_with_a_segment_name_is_refused(tmp_path):
    written(tmp_path, [FIRST])
    (segment,) = segment_files(tmp_path)
    segment.write_bytes(b"PK\x03\x04 this is a zip archive, not a log" * 4)
    with pytest.raises(StorageError, match="offset 0: not a keel log segment"):
        DurableLog.open(tmp_path)


def test_a_segment_of_a_newer_format_is_refused(tmp_path):
    written(tmp_path, [FIRST])
    (segment,) = segment_files(tmp_path)
    first = struct.pack(">8sIQ", MAGIC, FORMAT_VERSION + 1, 1)
    header = first + struct.pack(">I", zlib.crc32(first))
    segment.write_bytes(header + segment.read_bytes()[SEGMENT_HEADER.size :])
    with pytest.raises(StorageError, match=f"segment format {FORMAT_VERSION + 1}, this keel reads format {FORMAT_VERSION}"):
        DurableLog.open(tmp_path)


def test_a_segment_from_another_log_is_refused_by_its_checkpoint(tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    written(ours, [FIRST, LAST], segment_bytes=1)
    written(theirs, [[Append(entries(1, 1))], [SaveStable(b"other")]], segment_bytes=1)
    second = segment_files(ours)[1]
    shutil.copy(theirs / second.name, second)
    with pytest.raises(StorageError, match="checkpoint .* disagrees with the segments before it"):
        DurableLog.open(ours)


def test_a_lost_segment_holding_live_entries_refuses_the_log(tmp_path):
    written(tmp_path, [FIRST, LAST], segment_bytes=1)
    segment_files(tmp_path)[0].unlink()
    with pytest.raises(StorageError, match="entries 1..3 are missing and no snapshot covers them"):
        DurableLog.open(tmp_path)


def test_a_deletion_cut_short_by_a_crash_is_finished_on_open(tmp_path):
    ops = [FIRST, LAST, [Append(entries(6, 2, term=3))]]
    compact = [CompactTo(SnapshotMeta(index=6, term=3))]
    live, aside = tmp_path / "log", tmp_path / "aside"
    written(live, ops, segment_bytes=1)
    shutil.copytree(live, aside)
    with DurableLog.open(live, segment_bytes=1) as log:
        log.write(compact)
        log.sync()
        kept = log.segments()
    deleted = [p for p in segment_files(aside) if live / p.name not in kept]
    assert len(deleted) >= 2
    # Deletions become durable in any order: say the oldest survived the crash and the next did not.
    shutil.copy(deleted[0], live / deleted[0].name)
    assert reopen(live) == fold([op for batch in ops for op in batch] + compact)
    assert segment_files(live) == list(kept), "the interrupted deletion is finished"


def test_a_segment_left_half_built_by_a_crash_is_deleted(tmp_path):
    written(tmp_path, [FIRST])
    stray = tmp_path / "segment-00000000000000000002.wal.tmp"
    stray.write_bytes(b"keel-wal\x00\x00")
    assert reopen(tmp_path) == fold(FIRST)
    assert not stray.exists()

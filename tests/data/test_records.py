"""The record file: what survives a restart, what a batch changes, how a partition streams, what is refused."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys

import pytest

from keel.data.merkle import MerkleTree, record_digest, slot_of
from keel.data.record_format import APPLICATION_ID
from keel.data.records import Change, PartitionCount, RecordFile, Write
from keel.errors import StorageError

from .files import BUCKET, NODE, crash_image, everything, puts


def test_records_and_high_water_survive_close_and_reopen(tmp_path):
    path = tmp_path / "records.db"
    with RecordFile.open(path, NODE) as records:
        records.write_batch(puts(3, range(50)), high_water=1234)
        records.write_batch([Write(BUCKET, 3, b"k7", None)], high_water=1300)
    with RecordFile.open(path, NODE) as records:
        assert records.high_water == 1300
        assert records.get(BUCKET, 3, b"k8") == b"v:8"
        assert records.get(BUCKET, 3, b"k7") is None
        assert records.count() == 49


def test_a_batch_is_on_disk_once_write_batch_returns(tmp_path):
    path = tmp_path / "records.db"
    with RecordFile.open(path, NODE) as records:
        records.write_batch(puts(0, range(20)), high_water=77)
        image = crash_image(path, tmp_path / "crash")  # the process dies here, nothing closed
    with RecordFile.open(image, NODE) as recovered:
        assert everything(recovered, BUCKET, 0) == everything(RecordFile.open(path, NODE), BUCKET, 0)
        assert recovered.count() == 20
        assert recovered.high_water == 77


def test_each_write_reports_the_digest_before_and_after_in_batch_order(tmp_path):
    with RecordFile.open(tmp_path / "r.db", NODE) as records:
        records.write_batch([Write(BUCKET, 1, b"a", b"old")], high_water=1)
        changes = records.write_batch([
            Write(BUCKET, 1, b"a", b"new"),
            Write(BUCKET, 1, b"a", b"newer"),  # sees the write before it in the same batch
            Write(BUCKET, 1, b"b", b"x"),
            Write(BUCKET, 1, b"b", None),
            Write(BUCKET, 1, b"never", None),
        ], high_water=2)
    d = record_digest
    assert changes == (
        Change(BUCKET, 1, b"a", d(b"old"), d(b"new")),
        Change(BUCKET, 1, b"a", d(b"new"), d(b"newer")),
        Change(BUCKET, 1, b"b", None, d(b"x")),
        Change(BUCKET, 1, b"b", d(b"x"), None),
        Change(BUCKET, 1, b"never", None, None),
    )


def test_buckets_and_partitions_keep_equal_keys_apart(tmp_path):
    with RecordFile.open(tmp_path / "r.db", NODE) as records:
        records.write_batch([Write("a", 1, b"k", b"a1"), Write("a", 2, b"k", b"a2"), Write("b", 1, b"k", b"b1")], 1)
        assert [records.get(*where, b"k") for where in (("a", 1), ("a", 2), ("b", 1), ("b", 2))] == [
            b"a1", b"a2", b"b1", None]
        assert records.digest("a", 2, b"k") == record_digest(b"a2")


def test_the_high_water_never_goes_back(tmp_path):
    with RecordFile.open(tmp_path / "r.db", NODE) as records:
        records.write_batch([], high_water=500)
        with pytest.raises(ValueError, match="below the stored 500"):
            records.write_batch(puts(0, range(1)), high_water=499)
        assert records.count() == 0


def test_a_scan_streams_a_partition_in_slot_order_and_resumes_after_a_restart(tmp_path):
    path = tmp_path / "r.db"
    with RecordFile.open(path, NODE) as records:
        records.write_batch(puts(5, range(100)) + puts(6, range(10)) + puts(5, range(3), bucket="other"), 1)
        first = records.scan(BUCKET, 5, limit=40)
    assert len(first.items) == 40 and first.resume == first.items[-1][0]
    with RecordFile.open(path, NODE) as records:  # the stream picks up where it was, in a new incarnation
        rest = everything(records, BUCKET, 5)
        resumed = []
        after = first.resume
        while after is not None:
            page = records.scan(BUCKET, 5, after, limit=40)
            resumed.extend(page.items)
            after = page.resume
    assert list(first.items) + resumed == rest
    assert sorted(rest) == sorted((b"k%d" % i, b"v:%d" % i) for i in range(100))
    assert [slot_of(k) for k, _ in rest] == sorted(slot_of(k) for k, _ in rest)


def test_a_scan_sees_writes_ahead_of_its_cursor_and_not_behind(tmp_path):
    with RecordFile.open(tmp_path / "r.db", NODE) as records:
        records.write_batch(puts(0, range(30)), 1)
        page = records.scan(BUCKET, 0, limit=10)
        behind, ahead = page.items[0][0], everything(records, BUCKET, 0)[-1][0]
        records.write_batch([Write(BUCKET, 0, behind, None), Write(BUCKET, 0, ahead, b"changed")], 2)
        after, seen = page.resume, []
        while after is not None:
            next_page = records.scan(BUCKET, 0, after, limit=10)
            seen.extend(next_page.items)
            after = next_page.resume
        now = everything(records, BUCKET, 0)
    assert seen == now[9:] and seen[-1] == (ahead, b"changed")  # one of the first ten is gone


def test_a_scan_can_be_narrowed_to_a_slot_range(tmp_path):
    with RecordFile.open(tmp_path / "r.db", NODE) as records:
        records.write_batch(puts(0, range(200)), 1)
        lo, hi = 1 << 30, 3 << 30
        items = records.scan(BUCKET, 0, slots=(lo, hi), limit=1000).items
        entries = records.entries(BUCKET, 0, lo, hi)
    expected = sorted((slot_of(b"k%d" % i), b"k%d" % i) for i in range(200) if lo <= slot_of(b"k%d" % i) < hi)
    assert [k for k, _ in items] == [k for _, k in expected]
    assert entries == tuple((k, record_digest(r)) for k, r in items)


def test_dropping_a_partition_leaves_the_others(tmp_path):
    with RecordFile.open(tmp_path / "r.db", NODE) as records:
        records.write_batch(puts(1, range(5)) + puts(2, range(7)) + puts(1, range(2), bucket="other"), 1)
        assert records.partition_counts() == (
            PartitionCount(BUCKET, 1, 5), PartitionCount(BUCKET, 2, 7), PartitionCount("other", 1, 2))
        assert records.drop_partition(BUCKET, 1) == 5
        assert records.partition_counts() == (PartitionCount(BUCKET, 2, 7), PartitionCount("other", 1, 2))
        assert records.count() == 9


def test_the_tree_built_from_the_file_matches_its_digests(tmp_path):
    with RecordFile.open(tmp_path / "r.db", NODE) as records:
        records.write_batch(puts(4, range(2500)) + puts(5, range(10)), 1)
        tree = records.tree(BUCKET, 4)
    assert tree == MerkleTree.build((b"k%d" % i, record_digest(b"v:%d" % i)) for i in range(2500))
    assert tree.root.count == 2500


def test_a_failed_write_refuses_every_later_write(tmp_path):
    with RecordFile.open(tmp_path / "r.db", NODE) as records:
        records.write_batch(puts(0, range(10)), 1)
        pages = records._writer.execute("PRAGMA page_count").fetchone()[0]
        records._writer.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full
        with pytest.raises(StorageError, match="cannot write records"):
            records.write_batch(puts(0, range(10, 5000), tag=b"big" * 100), 2)
        records._writer.execute("PRAGMA max_page_count = 1000000")  # space again; the file still refuses
        with pytest.raises(StorageError, match="cannot write records"):
            records.write_batch(puts(0, range(10, 11)), 3)
        assert records.get(BUCKET, 0, b"k10") is None and records.count() == 10


# --- refusals -----------------------------------------------------------------


def _refused(path, node=NODE) -> str:
    with pytest.raises(StorageError) as caught:
        RecordFile.open(path, node)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message


def test_a_file_of_garbage_bytes_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "r.db"
    path.write_bytes(b"these are not the records you are looking for" * 100)
    assert "not a sqlite database" in _refused(path)
    assert path.read_bytes().startswith(b"these are not")  # left as it was


def test_a_sqlite_database_of_another_application_is_refused(tmp_path):
    path = tmp_path / "r.db"
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE photos (name TEXT, data BLOB)")
    other.close()
    assert "application_id 0x0" in _refused(path)


def test_a_sqlite_database_claiming_keel_without_its_marker_is_refused(tmp_path):
    path = tmp_path / "r.db"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value)")
    other.execute("INSERT INTO meta VALUES ('format', 'something.else')")
    other.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    other.commit()
    other.close()
    assert "format marker 'something.else'" in _refused(path)


def test_another_nodes_file_is_refused(tmp_path):
    path = tmp_path / "r.db"
    RecordFile.open(path, "data-2").close()
    assert "holds the records of node 'data-2', not 'data-1'" in _refused(path)


def test_a_file_of_another_format_version_is_refused(tmp_path):
    path = tmp_path / "r.db"
    RecordFile.open(path, NODE).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = 2 WHERE name = 'version'")
    db.commit()
    db.close()
    assert "record file format 2; this keel reads format 1" in _refused(path)


def test_a_file_with_a_damaged_page_is_refused(tmp_path):
    path = tmp_path / "r.db"
    with RecordFile.open(path, NODE) as records:
        records.write_batch(puts(0, range(3000)), 1)
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 20 * page
    data[10 * page + 16 : 11 * page - 16] = b"\xa5" * (page - 32)  # scribble over one page's cells
    path.write_bytes(bytes(data))
    assert "damaged" in _refused(path)


def test_a_file_open_elsewhere_is_refused(tmp_path):
    path = tmp_path / "r.db"
    with RecordFile.open(path, NODE):
        assert "open elsewhere" in _refused(path)
    RecordFile.open(path, NODE).close()  # free again once closed


def test_an_empty_file_is_a_new_record_file(tmp_path):
    path = tmp_path / "r.db"
    path.write_bytes(b"")  # a crash before the first commit leaves this
    with RecordFile.open(path, NODE) as records:
        assert records.count() == 0 and records.high_water == 0
    with RecordFile.open(path, NODE) as records:
        assert records.node == NODE


def test_the_file_is_in_wal_mode_and_every_commit_syncs(tmp_path):
    """A power cut cannot be staged in a test, so check the settings that make a commit survive one."""
    with RecordFile.open(tmp_path / "r.db", NODE) as records:
        assert records._writer.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert records._writer.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL: fsync the WAL on commit


CHILD = """
import sys
from keel.data.records import RecordFile, Write
records = RecordFile.open(sys.argv[1], "data-1")
for i in range(1_000_000):
    records.write_batch([Write("default", i % 4, b"k%d" % i, b"v%d" % i)], high_water=i)
    print(i, flush=True)  # acknowledged: the batch is durable
"""


def test_a_sigkilled_writer_loses_nothing_it_acknowledged(tmp_path):
    """A real process, killed mid-stream: every batch it reported durable is there after a restart."""
    path = tmp_path / "r.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        acked = -1
        while acked < 200:
            line = child.stdout.readline()
            assert line, f"the writer exited early ({child.wait(timeout=30)})"
            acked = int(line)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    with RecordFile.open(path, NODE) as records:
        assert records.high_water >= acked
        assert all(records.get(BUCKET, i % 4, b"k%d" % i) == b"v%d" % i for i in range(acked + 1))

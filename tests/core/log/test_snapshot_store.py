"""The snapshot store: atomic saves, the newest wins, damage refuses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from keel.consensus.log_ops import SnapshotMeta
from keel.core.log import SnapshotStore, StoredSnapshot
from keel.errors import StorageError

OLD = StoredSnapshot(SnapshotMeta(10, 2, config=b"a,b,c"), b"state at 10")
NEW = StoredSnapshot(SnapshotMeta(25, 3, config=b"a,b,c,d"), b"state at 25" * 20)


def files(store: SnapshotStore) -> list[str]:
    return sorted(p.name for p in store.directory.iterdir())


def test_an_empty_store_loads_nothing(tmp_path):
    assert SnapshotStore.open(tmp_path / "snapshots").load() is None


def test_a_saved_snapshot_loads_back(tmp_path):
    store = SnapshotStore.open(tmp_path)
    store.save(NEW.meta, NEW.data)
    assert SnapshotStore.open(tmp_path).load() == NEW
    assert files(store) == ["snapshot-00000000000000000025-00000000000000000003.snap"]


def test_a_newer_snapshot_replaces_the_older(tmp_path):
    store = SnapshotStore.open(tmp_path)
    store.save(OLD.meta, OLD.data)
    store.save(NEW.meta, NEW.data)
    assert len(files(store)) == 1
    assert store.load() == NEW


def with_older_left_behind(directory: Path) -> tuple[SnapshotStore, Path]:
    """A store holding NEW, and OLD as a crash after NEW's save leaves it: not yet deleted."""
    store = SnapshotStore.open(directory)
    store.save(OLD.meta, OLD.data)
    (old,) = directory.iterdir()
    kept = old.read_bytes()
    store.save(NEW.meta, NEW.data)
    old.write_bytes(kept)  # the deletion did not reach the disk
    return store, old


def test_an_older_snapshot_left_by_a_crash_is_deleted_on_load(tmp_path):
    store, old = with_older_left_behind(tmp_path)
    assert store.load() == NEW
    assert not old.exists()


def test_saving_an_older_snapshot_than_the_stored_one_is_refused(tmp_path):
    store = SnapshotStore.open(tmp_path)
    store.save(NEW.meta, NEW.data)
    with pytest.raises(ValueError, match="snapshot 10/2 is older than the stored 25/3"):
        store.save(OLD.meta, OLD.data)
    store.save(NEW.meta, b"retaken at the same index")
    assert store.load() == StoredSnapshot(NEW.meta, b"retaken at the same index")


def test_an_interrupted_save_is_deleted_on_open(tmp_path):
    store = SnapshotStore.open(tmp_path)
    store.save(OLD.meta, OLD.data)
    (tmp_path / "snapshot-00000000000000000025-00000000000000000003.snap.tmp").write_bytes(b"half")
    assert SnapshotStore.open(tmp_path).load() == OLD
    assert len(files(store)) == 1


def test_a_damaged_byte_anywhere_refuses_the_snapshot_naming_file_and_offset(tmp_path):
    store = SnapshotStore.open(tmp_path)
    store.save(NEW.meta, NEW.data)
    (path,) = tmp_path.iterdir()
    pristine = path.read_bytes()
    for offset in range(len(pristine)):
        damaged = bytearray(pristine)
        damaged[offset] ^= 0x01
        path.write_bytes(damaged)
        with pytest.raises(StorageError, match=re.escape(f"{path}: offset ")):
            store.load()


def test_a_cut_short_snapshot_is_refused_and_never_replaced_by_an_older_one(tmp_path):
    store, old = with_older_left_behind(tmp_path)
    newest = tmp_path / "snapshot-00000000000000000025-00000000000000000003.snap"
    newest.write_bytes(newest.read_bytes()[:-5])
    with pytest.raises(StorageError, match="header promises 7 \\+ 220 bytes, the file holds 222"):
        store.load()
    assert old.exists(), "nothing is deleted when the newest snapshot is refused"


def test_a_foreign_file_with_a_snapshot_name_is_refused(tmp_path):
    (tmp_path / "snapshot-00000000000000000001-00000000000000000001.snap").write_bytes(b"\x89PNG" + bytes(60))
    with pytest.raises(StorageError, match="offset 0: not a keel snapshot"):
        SnapshotStore.open(tmp_path).load()

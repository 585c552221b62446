"""The core's keyspace: keys with revisions, and the history watches read.

Theory of operation. The store holds the live keys (`KeyValue`s in key
order, for prefix ranges) and a revision counter. A change happens inside a
`Writes` batch opened at the next revision: every put and delete of one
request (a whole `Txn`) shares that revision, and the counter moves only if
the batch changed something (a delete of nothing is no change, as in etcd).
Each change also appends an `Event` to the history, which `events` reads
for watches from any revision at or above `compacted`; as in etcd,
`compact(revision)` drops the history before that revision and keeps the
revision itself, and a watch from an earlier one raises `Compacted`.

The store keeps no old values of keys (no reads at past revisions): the
history is what remembers, and only until it is compacted.

Pure and deterministic: the same requests give the same state on every
node; it never looks at a clock.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from sortedcontainers import SortedDict

from keel.core.api import Event, KeyValue
from keel.errors import Compacted, KeelError

__all__ = ["KeyStore", "Writes", "prefix_end"]


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key above every key that starts with `prefix`; None when there is none (all 0xff)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


class KeyStore:
    """Live keys in order, the revision, and the event history since the last compaction."""

    def __init__(self) -> None:
        self.revision = 0
        self.compacted = 0  # history before this revision is gone
        self._keys: SortedDict[bytes, KeyValue] = SortedDict()
        self._history: list[Event] = []  # in revision order
        self._history_revisions: list[int] = []  # parallel to _history, for bisecting

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, key: bytes) -> KeyValue | None:
        return self._keys.get(key)

    def range(self, key: bytes, *, prefix: bool = False, limit: int = 0) -> tuple[list[KeyValue], int]:
        """The keys asked for in key order (at most `limit`, 0: all) and how many there are in all."""
        if not prefix:
            found = self._keys.get(key)
            return ([found] if found is not None else []), int(found is not None)
        keys = list(self._prefix(key))
        chosen = keys[:limit] if limit > 0 else keys
        return [self._keys[k] for k in chosen], len(keys)

    def writes(self) -> Writes:
        """Open a batch of changes at the next revision; `Writes.close` records it."""
        return Writes(self)

    def events(self, key: bytes, *, prefix: bool, start: int) -> Iterator[Event]:
        """Events on `key` (or under it) from revision `start` on, in order.

        Raises:
            Compacted: `start` is below the compacted revision.
        """
        if start < self.compacted:
            raise Compacted(f"watch from revision {start}: the history before {self.compacted} was compacted")
        end = prefix_end(key) if prefix else None
        for i in range(bisect.bisect_left(self._history_revisions, start), len(self._history)):
            event = self._history[i]
            k = event.kv.key
            if (k == key) if not prefix else (k >= key and (end is None or k < end)):
                yield event

    def compact(self, revision: int) -> None:
        """Forget the history before `revision`.

        Raises:
            KeelError: `revision` is above the current revision, or at or below the compacted one.
        """
        if revision > self.revision:
            raise KeelError(f"compact: revision {revision} is in the future (current revision {self.revision})")
        if revision <= self.compacted:
            raise KeelError(f"compact: revision {revision} is already compacted (compacted to {self.compacted})")
        cut = bisect.bisect_left(self._history_revisions, revision)
        del self._history[:cut]
        del self._history_revisions[:cut]
        self.compacted = revision

    def history_length(self) -> int:
        return len(self._history)

    def trim(self, limit: int) -> None:
        """Compact so that about `limit` events stay (whole revisions, so possibly a few more)."""
        if len(self._history) > limit:
            revision = self._history_revisions[len(self._history) - limit]
            if revision > self.compacted:
                self.compact(revision)

    # --- snapshots -------------------------------------------------------------------

    def dump(self) -> tuple[int, int, list[KeyValue], list[Event]]:
        """Everything, for a snapshot: revision, compacted, keys, history."""
        return self.revision, self.compacted, list(self._keys.values()), list(self._history)

    @classmethod
    def load(cls, revision: int, compacted: int, keys: list[KeyValue], history: list[Event]) -> KeyStore:
        store = cls()
        store.revision, store.compacted = revision, compacted
        store._keys = SortedDict((kv.key, kv) for kv in keys)
        store._history = list(history)
        store._history_revisions = [event.kv.mod_revision for event in history]
        return store

    def _prefix(self, prefix: bytes) -> Iterator[bytes]:
        end = prefix_end(prefix)
        if end is None:
            return self._keys.irange(minimum=prefix)
        return self._keys.irange(minimum=prefix, maximum=end, inclusive=(True, False))


class Writes:
    """The changes of one request, all at revision `revision`."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store
        self.revision = store.revision + 1
        self.changed = False
        self.touched: set[bytes] = set()  # keys written in this batch

    def put(self, key: bytes, value: bytes, lease: int) -> KeyValue | None:
        """Set `key`; returns what it was before (None: absent)."""
        self._touch(key)
        before = self.store._keys.get(key)
        if before is None:
            kv = KeyValue(key, value, self.revision, self.revision, 1, lease)
        else:
            kv = KeyValue(key, value, before.create_revision, self.revision, before.version + 1, lease)
        self.store._keys[key] = kv
        self._record(Event("put", kv))
        return before

    def delete(self, key: bytes, *, prefix: bool = False) -> list[KeyValue]:
        """Delete `key` (or every key under it); returns what was deleted."""
        keys = list(self.store._prefix(key)) if prefix else ([key] if key in self.store._keys else [])
        gone = []
        for k in keys:
            self._touch(k)
            kv = self.store._keys.pop(k)
            gone.append(kv)
            self._record(Event("delete", KeyValue(k, b"", kv.create_revision, self.revision, 0, kv.lease)))
        return gone

    def close(self) -> int:
        """Record the batch; returns the store's revision after it."""
        if self.changed:
            self.store.revision = self.revision
        return self.store.revision

    def _touch(self, key: bytes) -> None:
        # etcd refuses a txn that writes one key twice: its events would share a revision.
        if key in self.touched:
            raise KeelError(f"txn: key {key!r} is written twice in one transaction")
        self.touched.add(key)

    def _record(self, event: Event) -> None:
        self.changed = True
        self.store._history.append(event)
        self.store._history_revisions.append(self.revision)

"""Buckets: the data cluster from a client, straight to a replica of each key.

`client.bucket("default")` gives a `Bucket` whose calls go to the data
nodes, not the core. The client keeps its own copy of the partition map
and of the data members' addresses (`DataView`), read once from the core
and then followed by watch in the client's background; each call finds the
key's partition and sends it to a replica of it (the owners for a read, any
writer for a write), so there is no extra hop and no core round trip per
operation. A replica that cannot be reached, or that fails before it
answers, is skipped for the next one, which coordinates the same call again
(for last-writer-wins a repeated put or delete only stamps the same value
later); a replica that answers with an error (`TooFewReplicas`,
`UnknownBucket`, `UnsupportedOperation`…) ends the call with it.

    async with keel.connect(endpoints) as c:
        users = c.bucket("users")
        await users.put("alice", b'{"plan": "pro"}', w=3)
        print(await users.get("alice"))
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import trio

from keel import wire
from keel.client.encoding import BytesLike, as_bytes
from keel.core.api import Range
from keel.core.api.system import MAP_KEY, MEMBER_PREFIX
from keel.data.api import DataCall, DataReply
from keel.data.bucket import DEFAULT_BUCKET, check_bucket_name
from keel.data.membership import MemberInfo
from keel.data.partition_map import PartitionMap, partition_of
from keel.errors import Compacted, KeelError, TooFewReplicas, Unavailable

if TYPE_CHECKING:
    from keel.client.async_client import AsyncClient

__all__ = ["DEFAULT_DATA_TIMEOUT_S", "Bucket", "DataView"]

DEFAULT_DATA_TIMEOUT_S = 2.0  # seconds a coordinator waits for the replicas a call needs
FOLLOW_RETRY_S = 0.5  # seconds between attempts to read the map again after the core failed to answer


class DataView:
    """The client's copy of the partition map and of the data members' addresses."""

    def __init__(self) -> None:
        self.map: PartitionMap | None = None
        self.members: dict[str, MemberInfo] = {}
        self.ready = trio.Event()  # set once a map and members were read
        self.members_read = False
        self.started = False

    async def follow(self, client: AsyncClient, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Read the map and members, then follow both by watch, until cancelled; never raises."""
        task_status.started()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._follow, client, MAP_KEY, False)
            nursery.start_soon(self._follow, client, MEMBER_PREFIX, True)

    async def _follow(self, client: AsyncClient, key: bytes, prefix: bool) -> None:
        while True:
            try:
                reply = await client.caller.read(Range(key, prefix=prefix))
                held = {kv.key: kv.value for kv in reply.kvs}
                self._apply(key, held)
                async for event in client.watch(key, prefix=prefix, start_revision=reply.revision + 1):
                    if event.kind == "delete":
                        held.pop(event.kv.key, None)
                    else:
                        held[event.kv.key] = event.kv.value
                    self._apply(key, held)
            except (Compacted, KeelError):
                await trio.sleep(FOLLOW_RETRY_S)  # read it all again

    def _apply(self, key: bytes, held: dict[bytes, bytes]) -> None:
        if key == MAP_KEY:
            data = held.get(MAP_KEY)
            if data is not None:
                try:
                    new = PartitionMap.from_bytes(data)
                except KeelError:
                    return  # the core checks maps it stores; keep the one we have
                if self.map is None or new.epoch > self.map.epoch:
                    self.map = new
        else:
            members = {}
            for k, value in held.items():
                try:
                    members[k[len(MEMBER_PREFIX):].decode()] = MemberInfo.from_bytes(value)
                except (KeelError, UnicodeDecodeError):
                    continue
            self.members = members
            self.members_read = True
        if self.map is not None and self.members_read:
            self.ready.set()


class Bucket:
    """One bucket of the data cluster; make one with `client.bucket(name)`."""

    def __init__(self, client: AsyncClient, name: str, view: DataView, *, timeout: float) -> None:
        self.name = check_bucket_name(name)
        self._client = client
        self._view = view
        self._timeout = timeout
        self._rng = random.Random()

    def __repr__(self) -> str:
        return f"Bucket({self.name!r})"

    async def put(self, key: BytesLike, value: BytesLike, *, n: int = 0, w: int = 0,
                  timeout: float | None = None) -> None:
        """Store `value` under `key`; returns once `w` replicas (the bucket's default) hold it durably.

        Raises:
            TooFewReplicas: fewer than `w` replicas acknowledged in time (those that did keep the write).
        """
        await self.call("put", key, as_bytes(value), n=n, w=w, timeout=timeout)

    async def get(self, key: BytesLike, *, n: int = 0, r: int = 0, timeout: float | None = None) -> bytes | None:
        """The value under `key` merged from `r` replicas (None: absent or deleted); stale replicas are repaired."""
        return await self.call("get", key, n=n, r=r, timeout=timeout)

    async def delete(self, key: BytesLike, *, n: int = 0, w: int = 0, timeout: float | None = None) -> None:
        """Delete `key` (a tombstone that replicates like a value)."""
        await self.call("delete", key, n=n, w=w, timeout=timeout)

    async def call(self, op: str, key: BytesLike, *args: Any, n: int = 0, r: int = 0, w: int = 0,
                   timeout: float | None = None) -> Any:
        """Any operation of the bucket's store on `key` (`put`, `get`, … or a CRDT's `incr`, `add`…); its result.

        Raises:
            TooFewReplicas, UnknownBucket, UnsupportedOperation: as the data node answered.
            Unavailable: no map yet, or no replica of the key's partition could be reached.
        """
        raw = as_bytes(key, "key")
        budget = self._timeout if timeout is None else timeout
        call = DataCall(self.name, raw, op, wire.encode_plain(list(args)), n=n, r=r, w=w, timeout=budget)
        deadline = trio.current_time() + budget + self._client.caller.options.request_timeout
        with trio.move_on_at(deadline):
            await self._view.ready.wait()
        pmap = self._view.map
        if pmap is None:
            raise Unavailable(f"bucket {self.name}: no partition map from the core yet (are data nodes running?)")
        partition = partition_of(raw, pmap.partitions)
        owners = list(pmap.readers_for(partition))
        joining = [node for node in pmap.replicas_for(partition) if node not in owners]
        self._rng.shuffle(owners)  # spreads the coordinating; a joiner hands reads on to an owner
        nodes = owners + joining
        last: KeelError | None = None
        for node in nodes:
            info = self._view.members.get(node)
            if info is None:
                continue
            left = deadline - trio.current_time()
            if left <= 0:
                break
            pool = self._client.caller.pool
            try:
                batcher = await pool.data_batcher(info.client)  # calls that start together share a frame
            except Unavailable as exc:  # not reachable: the next replica coordinates
                last = exc
                continue
            conn = batcher.conn
            try:
                reply = await batcher.request(call, timeout=left)
            except TooFewReplicas:
                raise
            except Unavailable as exc:
                # The coordinator died or did not answer: another replica coordinates the same call. It
                # may have taken effect already; the same call again is harmless for a put or a delete
                # (the value is the same, only its stamp is later).
                last = exc
                await pool.drop(info.client, conn)
                continue
            if not isinstance(reply, DataReply):
                raise KeelError(f"data node {node} answered {type(reply).__name__} to a data call")
            return wire.decode_plain(reply.result, "result")
        raise Unavailable(f"{op} {raw!r} in bucket {self.name}: no replica of partition {partition} answered "
                          f"({', '.join(nodes) or 'none in the map'}){f'; last: {last}' if last else ''}")

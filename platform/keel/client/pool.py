"""A client's connections: one per node, opened on first use, closed when it fails."""

from __future__ import annotations

from typing import Any

import trio

from keel.address import Address
from keel.client.batcher import Batcher
from keel.transport import ClientSettings, TransportClient

__all__ = ["CLOSE_GRACE_S", "Pool"]

CLOSE_GRACE_S = 1.0  # seconds to close one connection politely


class Pool:
    """Connections by node address, for the length of one client (one `trio.run` for the blocking client)."""

    def __init__(self, connect: Any, settings: ClientSettings) -> None:
        self._connect = connect  # a transport plugin's `connect(address, settings)`
        self._settings = settings
        self._conns: dict[Address, TransportClient] = {}
        self._batchers: dict[Address, Batcher] = {}  # one per open connection
        self._data_batchers: dict[Address, Batcher] = {}
        self._opening: dict[Address, trio.Lock] = {}

    async def get(self, address: Address) -> TransportClient:
        """The connection to `address`, opened if there is none.

        Raises:
            Unavailable: nothing accepted the connection in the settings' connect timeout.
        """
        conn = self._conns.get(address)
        if conn is not None:
            return conn
        # One dial per node at a time: requests that start together share it.
        async with self._opening.setdefault(address, trio.Lock()):
            conn = self._conns.get(address)
            if conn is None:
                conn = await self._connect(address, self._settings)
                self._conns[address] = conn
        return conn

    async def batcher(self, address: Address) -> Batcher:
        """What sends core calls to `address` in batches, over its connection (opened if needed).

        Raises:
            Unavailable: as for `get`.
        """
        conn = await self.get(address)
        batcher = self._batchers.get(address)
        if batcher is None or batcher.conn is not conn:
            batcher = self._batchers[address] = Batcher(conn)
        return batcher

    async def data_batcher(self, address: Address) -> Batcher:
        """What sends data calls to the data node at `address` in batches (`DataCallBatch`).

        Raises:
            Unavailable: as for `get`.
        """
        from keel.data.api import DataCallBatch, DataCallBatchReply  # noqa: PLC0415 - only data clients need it

        conn = await self.get(address)
        batcher = self._data_batchers.get(address)
        if batcher is None or batcher.conn is not conn:
            batcher = self._data_batchers[address] = Batcher(conn, wrap=DataCallBatch, reply=DataCallBatchReply)
        return batcher

    async def drop(self, address: Address, conn: TransportClient) -> None:
        """Close `conn`, which failed; requests still on it fail with `Unavailable` and retry elsewhere."""
        if self._conns.get(address) is conn:
            del self._conns[address]
            self._batchers.pop(address, None)
            self._data_batchers.pop(address, None)
        with trio.move_on_after(CLOSE_GRACE_S, shield=True):
            await conn.aclose()

    async def aclose(self) -> None:
        """Close every connection. Idempotent."""
        conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            with trio.move_on_after(CLOSE_GRACE_S, shield=True):
                await conn.aclose()

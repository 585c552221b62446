"""keel.client: talk to the consistent core from Python.

```python
async with keel.connect(["127.0.0.1:7101", "127.0.0.1:7103"]) as c:
    await c.put("greeting", "hello")
    kv = await c.get("greeting")
    async with c.lock("jobs") as token:
        ...
```
`keel.Client` offers the same calls for code that is not async, and
`keel.aio.connect` (`connect_asyncio` here) as awaitables for asyncio
programs; both are served by a background Trio loop of their own. See docs/client.md.

- `AsyncClient` (`connect`), `Client`, `AioClient` (`connect_asyncio`): the calls;
- `endpoints_from_cluster`, `parse_endpoints`, `Endpoint`: where the core is;
- `compare_value`, `compare_version`, `compare_create`, `compare_mod`,
  `compare_lease`, `absent`, `put_op`, `delete_op`, `get_op`: transactions;
- `Lease`, `Watcher`, `Election` (and their blocking and asyncio forms):
  what leases, watches and elections hand out; `WatchCallback`: a watch
  that calls back (`Client.add_watch_callback`);
- `KeyValue`, `Event` and the replies are `keel.core.api`'s messages.
"""

from keel.client.aio import AioClient, AioElection, AioLease, AioObserver, AioWatch
from keel.client.aio import connect as connect_asyncio
from keel.client.async_client import DEFAULT_LOCK_TTL_S, AsyncClient, connect
from keel.client.blocking import BlockingElection, BlockingLease, BlockingObserver, BlockingWatch, Client
from keel.client.election import DEFAULT_ELECTION_TTL_S, Election, LeaderObserver
from keel.client.endpoints import Endpoint, EndpointLike, endpoints_from_cluster, parse_endpoints
from keel.client.lease import Lease
from keel.client.options import DEFAULT_DEADLINE_S, DEFAULT_REQUEST_TIMEOUT_S, ClientOptions
from keel.client.txn import (
    absent, compare_create, compare_lease, compare_mod, compare_value, compare_version, delete_op, get_op, put_op,
)
from keel.client.streams import WatchCallback
from keel.client.watch import Watcher
from keel.core.api import Event, KeyValue

__all__ = [
    "DEFAULT_DEADLINE_S",
    "DEFAULT_ELECTION_TTL_S",
    "DEFAULT_LOCK_TTL_S",
    "DEFAULT_REQUEST_TIMEOUT_S",
    "AioClient",
    "AioElection",
    "AioLease",
    "AioObserver",
    "AioWatch",
    "AsyncClient",
    "BlockingElection",
    "BlockingLease",
    "BlockingObserver",
    "BlockingWatch",
    "Client",
    "ClientOptions",
    "Election",
    "Endpoint",
    "EndpointLike",
    "Event",
    "KeyValue",
    "LeaderObserver",
    "Lease",
    "WatchCallback",
    "Watcher",
    "absent",
    "compare_create",
    "compare_lease",
    "compare_mod",
    "compare_value",
    "compare_version",
    "connect",
    "connect_asyncio",
    "delete_op",
    "endpoints_from_cluster",
    "get_op",
    "parse_endpoints",
    "put_op",
]

"""keel.aio: the core from asyncio programs.

```python
import asyncio
import keel.aio

async def main() -> None:
    async with keel.aio.connect(["127.0.0.1:7101", "127.0.0.1:7103"]) as c:
        await c.put("greeting", "hello")
        async with c.lock("jobs") as token:
            ...

asyncio.run(main())
```
The calls of `keel.connect`, as awaitables served by the client's own
background Trio loop (one implementation, another door). See docs/client.md.
"""

from keel.client import AioClient, AioElection, AioLease, AioObserver, AioWatch
from keel.client import connect_asyncio as connect

__all__ = ["AioClient", "AioElection", "AioLease", "AioObserver", "AioWatch", "connect"]

"""keel.core: the consistent core.

- `api`: the client protocol (requests and replies);
- `CoreMachine`: the replicated state machine (keyspace with revisions,
  leases, sessions, locks and elections as keys);
- `CoreServer`: one node's service logic, sans-I/O, over any consensus engine;
- `CoreRuntime`: Trio drives a `CoreServer` with the durable log (`keel.core.log`);
- `keel.core.log`: the durable write-ahead log and the snapshot store.
"""

from keel.core.machine import Command, CoreMachine, LeaseExpire
from keel.core.server import CoreServer, ServerOutput

__all__ = ["Command", "CoreMachine", "CoreServer", "LeaseExpire", "ServerOutput"]

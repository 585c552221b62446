"""The consensus engine contract: what engines take, what they return, what they persist.

`sim_node` runs any engine in `keel.sim` with a key-value state machine, for engine tests and conformance.
"""

from keel.consensus.engine import (
    Engine,
    EngineFactory,
    EngineSettings,
    EngineStatus,
    LeaderChanged,
    MembershipChange,
    Outbound,
    Ready,
    ReadReady,
    RoleChanged,
    SnapshotToInstall,
)
from keel.consensus.log_ops import (
    Append,
    CompactTo,
    Entry,
    EntryKind,
    LogOp,
    LogState,
    Recovered,
    SaveStable,
    SnapshotMeta,
    TruncateFrom,
)
from keel.consensus.sim_node import (
    Applied,
    EngineNode,
    Installed,
    KvMachine,
    Machine,
    ReadAbandoned,
    ReadServed,
    StoredSnapshot,
    engine_cluster,
)

__all__ = [
    "Append",
    "Applied",
    "CompactTo",
    "Engine",
    "EngineFactory",
    "EngineNode",
    "EngineSettings",
    "EngineStatus",
    "Entry",
    "EntryKind",
    "Installed",
    "KvMachine",
    "LeaderChanged",
    "LogOp",
    "LogState",
    "Machine",
    "MembershipChange",
    "Outbound",
    "ReadAbandoned",
    "ReadServed",
    "ReadReady",
    "Ready",
    "Recovered",
    "RoleChanged",
    "SaveStable",
    "SnapshotMeta",
    "SnapshotToInstall",
    "StoredSnapshot",
    "TruncateFrom",
    "engine_cluster",
]

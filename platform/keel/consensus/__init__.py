"""The consensus engine contract: what engines take, what they return, what they persist.

`EngineNode` (`driver`) is the sans-I/O driver around any engine and its state machine, shared by the
node runtime and the simulator; `engine_cluster` (`sim_node`) runs any engine in `keel.sim` for engine tests.
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
from keel.consensus.config_history import ACTIONS, ConfigHistory
from keel.consensus.entry_log import NO_SNAPSHOT, EntryLog
from keel.consensus.option_rules import FRAME_HEADROOM, chunk_size, whole_number
from keel.consensus.quorum import quorum, quorum_value
from keel.consensus.driver import (
    Applied,
    EngineNode,
    Installed,
    Machine,
    ReadAbandoned,
    ReadServed,
    StoredSnapshot,
    fold_durable,
)
from keel.consensus.sim_node import KvMachine, engine_cluster

__all__ = [
    "ACTIONS",
    "FRAME_HEADROOM",
    "NO_SNAPSHOT",
    "Append",
    "Applied",
    "CompactTo",
    "ConfigHistory",
    "Engine",
    "EngineFactory",
    "EngineNode",
    "EngineSettings",
    "EngineStatus",
    "Entry",
    "EntryKind",
    "EntryLog",
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
    "chunk_size",
    "engine_cluster",
    "fold_durable",
    "quorum",
    "quorum_value",
    "whole_number",
]

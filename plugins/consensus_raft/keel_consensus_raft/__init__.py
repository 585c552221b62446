"""keel's Raft engine: a sans-I/O Raft server behind the `keel.consensus.Engine` contract."""

from keel_consensus_raft.engine import RaftEngine, create
from keel_consensus_raft.messages import Configuration
from keel_consensus_raft.options import RaftOptions
from keel_consensus_raft.plugin import VERSION

__all__ = ["VERSION", "Configuration", "RaftEngine", "RaftOptions", "create"]

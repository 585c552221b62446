"""keel's Multi-Paxos consensus engine: a sans-I/O plugin behind `keel.consensus.Engine`."""

from keel_consensus_paxos.engine import PaxosEngine, create
from keel_consensus_paxos.options import PaxosOptions

__all__ = ["PaxosEngine", "PaxosOptions", "create"]

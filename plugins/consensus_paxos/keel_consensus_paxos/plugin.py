"""The `paxos` consensus plugin: what keel loads through the entry point."""

from __future__ import annotations

from keel import hookimpl
from keel.contract import ConsensusPlugin

from keel_consensus_paxos.engine import create
from keel_consensus_paxos.options import PaxosOptions

__all__ = ["KEEL_CONTRACT", "VERSION", "keel_consensus_engines"]

KEEL_CONTRACT = "1.2"  # an acceptor overwrites a slot with a replacing Append
VERSION = "0.1.0"


@hookimpl
def keel_consensus_engines() -> list[ConsensusPlugin]:
    return [
        ConsensusPlugin(
            name="paxos",
            version=VERSION,
            create=create,
            options=PaxosOptions,
            summary="Multi-Paxos with a stable leader, slot recovery, pipelined phase 2, read barriers, snapshots",
        )
    ]

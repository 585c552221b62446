"""The `raft` consensus plugin: what keel loads through the entry point."""

from __future__ import annotations

from keel import hookimpl
from keel.contract import ConsensusPlugin

from keel_consensus_raft.engine import create
from keel_consensus_raft.options import RaftOptions

__all__ = ["KEEL_CONTRACT", "VERSION", "keel_consensus_engines"]

KEEL_CONTRACT = "1.1"  # uses Ready.send_early
VERSION = "0.1.0"


@hookimpl
def keel_consensus_engines() -> list[ConsensusPlugin]:
    return [
        ConsensusPlugin(
            name="raft",
            version=VERSION,
            create=create,
            options=RaftOptions,
            summary="Raft with PreVote, CheckQuorum, ReadIndex, leadership transfer, snapshots, one-server changes",
        )
    ]

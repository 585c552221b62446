"""The leader's side of a one-node membership change (see `membership` for why it is safe)."""

from __future__ import annotations

from keel.consensus import EntryKind, MembershipChange
from keel.errors import KeelError, NotLeader

from keel_consensus_paxos import proposer, replication
from keel_consensus_paxos.state import PaxosState, Role

__all__ = ["change"]


def change(s: PaxosState, change: MembershipChange) -> int:
    """Propose a CONFIG entry for a one-node change; it takes effect at once. Returns its slot.

    Raises:
        NotLeader: this node does not lead.
        KeelError: a hand-over or an earlier change is in progress, the
            leader's own first slot is not chosen yet, or the change does not apply.
    """
    if s.role is not Role.LEADER:
        raise NotLeader(s.leader)
    where = f"membership change {change.action} {change.node!r}"
    if s.transfer is not None:
        raise KeelError(f"{where}: leadership is being handed to {s.transfer.target}; retry at the new leader")
    if s.members.latest_index > s.commit:
        raise KeelError(f"{where}: the change at slot {s.members.latest_index} is not chosen yet; retry after it")
    if s.commit < s.ready_slot:
        raise KeelError(f"{where}: this leader's first slot ({s.ready_slot}) is not chosen yet; retry shortly")
    config = s.members.proposed(change, replication.peer_caught_up(s, change.node))
    index = replication.propose(s, EntryKind.CONFIG, config.encode())
    s.members.appended((s.log.entry(index),))
    proposer.sync_peers(s)
    return index

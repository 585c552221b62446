"""Cluster membership: which configuration is in force, and one-server changes to it.

Theory of operation (thesis §4.1). A configuration travels as a CONFIG
entry in the log and takes effect on a server as soon as that entry is in
its log, committed or not; a server always uses the latest configuration in
its log. So removing a CONFIG entry (a conflicting suffix) brings back the
one before it, and this module keeps every CONFIG entry after the snapshot
for that reason. The snapshot carries the configuration as of its index.

Changes add or remove one server at a time, so any majority of the old
voters overlaps any majority of the new. A leader starts a change only when
no earlier change is uncommitted and it has committed an entry of its own
term (otherwise two leaders of different terms could each append a change
from the same base and pick disjoint majorities). New servers join as
learners, receive the log without voting, and are promoted once caught up,
so adding them never stalls commits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from keel.consensus import ACTIONS, ConfigHistory, Entry, EntryKind, MembershipChange
from keel.errors import KeelError, NotLeader

from keel_consensus_raft import roles
from keel_consensus_raft.messages import Configuration, TimeoutNow
from keel_consensus_raft.progress import Progress
from keel_consensus_raft.roles import Role

if TYPE_CHECKING:
    from keel_consensus_raft.state import RaftState

__all__ = ["ACTIONS", "Membership", "after_commit", "change", "sync_progress"]

@attrs.define
class Membership(ConfigHistory):
    """The configuration as of the snapshot, plus every CONFIG entry after it (`keel.consensus.ConfigHistory`)."""

    config_type = Configuration

    @property
    def config(self) -> Configuration:
        return super().config


# --- the leader's side of a change ---------------------------------------------


def change(s: RaftState, change: MembershipChange) -> int:
    """Append a CONFIG entry for a one-server change; it takes effect at once. Returns its index.

    Raises:
        NotLeader: this server does not lead.
        KeelError: a transfer or an earlier change is in progress, the leader
            has not committed an entry of its term yet, or the change does
            not apply.
    """
    if s.role is not Role.LEADER:
        raise NotLeader(s.leader)
    where = f"membership change {change.action} {change.node!r}"
    if s.transfer is not None:
        raise KeelError(f"{where}: leadership is being handed to {s.transfer.target}; retry at the new leader")
    if s.members.latest_index > s.commit:
        raise KeelError(f"{where}: the change at index {s.members.latest_index} is not committed yet; retry after it")
    if not s.committed_in_term():
        raise KeelError(f"{where}: this leader has not committed an entry of term {s.term} yet; retry shortly")
    progress = s.progress.get(change.node)
    caught_up = progress is not None and progress.match + s.options.promote_lag >= s.log.last_index
    config = s.members.proposed(change, caught_up)
    entry = Entry(index=s.log.last_index + 1, term=s.term, kind=EntryKind.CONFIG, data=config.encode())
    s.log.append((entry,))
    s.members.appended((entry,))
    sync_progress(s)
    return entry.index


def sync_progress(s: RaftState) -> None:
    """A leader replicates to exactly the members in force (and keeps its own entry for its match)."""
    members = set(s.members.config.members) | {s.node_id}
    for node in sorted(members):
        s.progress.setdefault(node, Progress(next=s.log.last_index + 1))
    for node in sorted(s.progress):
        if node not in members:
            del s.progress[node]


def after_commit(s: RaftState) -> None:
    """A leader whose own removal is now committed hands over and steps down (thesis §4.2.2).

    Until then it led without counting itself in majorities. It asks the
    most caught-up voter to campaign at once rather than leave the cluster
    waiting for an election timeout.
    """
    if s.role is not Role.LEADER or s.members.latest_index > s.commit or s.members.is_voter(s.node_id):
        return
    ready = [(s.progress[v].match, v) for v in s.voting_peers() if v in s.progress]
    caught_up = sorted(v for match, v in ready if match == s.log.last_index)
    if caught_up:
        s.send(caught_up[0], TimeoutNow(term=s.term))
    roles.become_follower(s, s.term, None)

"""Cluster membership: the configuration in force, and one-node changes to it through the log.

Theory of operation. A configuration travels as a CONFIG entry in a slot
and takes effect on a node as soon as it holds that entry, chosen or not:
a node always uses the latest configuration in its log, for phase-1 and
phase-2 quorums alike. A higher ballot may overwrite the slot (the value
was never chosen), which brings back the configuration before it; so this
module keeps every CONFIG entry after the snapshot, and the snapshot
carries the configuration as of its index.

Changes add or remove one node at a time, so any majority of the old
voters overlaps any majority of the new, whichever of the two a node uses.
A candidate may have missed several changes (Paxos elects without Raft's
up-to-date check), so phase 1 needs a majority of each configuration it
learns from the promises, one after the other (`proposer._configs`).
A leader starts a change only when no earlier one is unchosen and its own
first slot (the no-op it wrote after phase 1) is chosen: before that it
might still re-propose an older leader's change from the same base, and two
changes from one base could pick disjoint majorities. New nodes join as
learners, learn the log without voting, and are promoted once caught up.
"""

from __future__ import annotations

import attrs

from keel.consensus import ConfigHistory, MembershipChange
from keel.errors import KeelError

from keel_consensus_paxos.ballot import SPAN
from keel_consensus_paxos.messages import Configuration

__all__ = ["Membership"]

@attrs.define
class Membership(ConfigHistory):
    """The configuration as of the snapshot, plus every CONFIG entry after it (`keel.consensus.ConfigHistory`)."""

    config_type = Configuration

    @property
    def config(self) -> Configuration:
        return super().config

    def proposed(self, change: MembershipChange, caught_up: bool) -> Configuration:
        """As `ConfigHistory.proposed`; a node added needs a member number left.

        Raises:
            KeelError: the change does not apply, or member numbers are used up.
        """
        if change.action == "add_learner" and change.node not in self.config.members \
                and self.config.next_number >= SPAN:
            raise KeelError(f"membership change add_learner {change.node!r}: member numbers are used up "
                            f"({SPAN - 1} nodes have been members)")
        return super().proposed(change, caught_up)

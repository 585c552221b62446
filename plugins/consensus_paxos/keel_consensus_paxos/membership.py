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

__all__ = ["ACTIONS", "Membership"]

ACTIONS = ("add_learner", "promote", "remove")


@attrs.define
class Membership(ConfigHistory):
    """The configuration as of the snapshot, plus every CONFIG entry after it (`keel.consensus.ConfigHistory`)."""

    config_type = Configuration

    @property
    def config(self) -> Configuration:
        return super().config

    def proposed(self, change: MembershipChange, caught_up: bool) -> Configuration:
        """The configuration that `change` would make of the one in force.

        Raises:
            KeelError: the action is unknown, or it does not apply to the
                node as the configuration stands.
        """
        config, node = self.config, change.node
        where = f"membership change {change.action} {node!r}"
        if change.action == "add_learner":
            if node in config.members:
                raise KeelError(f"{where}: already a member (voters {list(config.voters)}, learners {list(config.learners)})")
            if config.next_number >= SPAN:
                raise KeelError(f"{where}: member numbers are used up ({SPAN - 1} nodes have been members)")
            return config.changed(config.voters, config.learners + (node,))
        if change.action == "promote":
            if node not in config.learners:
                raise KeelError(f"{where}: not a learner (learners {list(config.learners)}); add it as one first")
            if not caught_up:
                raise KeelError(f"{where}: the learner's log is still behind the leader's; retry once it caught up")
            return config.changed(config.voters + (node,), tuple(n for n in config.learners if n != node))
        if change.action == "remove":
            if node not in config.members:
                raise KeelError(f"{where}: not a member (voters {list(config.voters)}, learners {list(config.learners)})")
            if config.voters == (node,):
                raise KeelError(f"{where}: the last voter cannot be removed")
            return config.changed(tuple(n for n in config.voters if n != node),
                                  tuple(n for n in config.learners if n != node))
        raise KeelError(f"membership change: unknown action {change.action!r} (actions: {', '.join(ACTIONS)})")

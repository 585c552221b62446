"""What Paxos peers send each other, and the records Paxos encodes into opaque bytes.

Every message carries a `ballot` (see `ballot`): the sender's when it
proposes or leads, the one being answered in a reply. Tags are `paxos.*`,
stable strings never derived from class names; a field added later must
have a default, and decoders ignore keys they do not know.

Phase 1 is `Prepare`/`Promise`, phase 2 is `Accept`/`Accepted`, both over
runs of consecutive slots (Multi-Paxos: one phase 1 covers every open slot).
`Heartbeat` carries leadership, the commit index and the read-barrier round.

Two records travel inside bytes the host keeps for the engine: `Stable` is
the payload of `SaveStable`, and `Configuration` the data of a CONFIG entry
and of `SnapshotMeta.config`.
"""

from __future__ import annotations

import attrs

from keel import wire
from keel.consensus import Entry, SnapshotMeta

from keel_consensus_paxos.ballot import SPAN

__all__ = [
    "Accept",
    "Accepted",
    "Configuration",
    "Heartbeat",
    "HeartbeatReply",
    "InstallSnapshot",
    "Prepare",
    "Promise",
    "SnapshotReply",
    "Stable",
    "Takeover",
]


@wire.message("paxos.prepare")
@attrs.frozen
class Prepare:
    """Phase 1a: promise `ballot` and report what you accepted from slot `first` on."""

    ballot: int
    first: int  # the candidate's commit index + 1: every slot it does not know to be chosen
    takeover: bool = False  # sent after a Takeover: acceptors skip the leader-stickiness check
    probe: bool = False  # only asks whether a promise would be given; nothing changes (see `proposer`)


@wire.message("paxos.promise")
@attrs.frozen
class Promise:
    """Phase 1b: the acceptor's answer to a Prepare."""

    ballot: int  # the ballot asked about
    ok: bool
    # ok: the acceptor's accepted entries from the Prepare's `first` slot to its last, each with the
    # ballot it was accepted in; entries at or below `commit` are chosen.
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    promised: int = 0  # refused: the higher ballot already promised (0: refused for another reason)
    behind: bool = False  # refused: the candidate trails this acceptor by more than a Promise may carry
    probe: bool = False  # the answer to a probe: `ok` says a promise would be given; carries no entries


@wire.message("paxos.accept")
@attrs.frozen
class Accept:
    """Phase 2a for the slots `first` .. `first + len(entries) - 1`, and what the leader knows is chosen."""

    ballot: int
    first: int  # slot of entries[0]; with no entries, the next slot the leader would send
    entries: tuple[Entry, ...]  # entries at or below `commit` are chosen values, with their own ballots
    commit: int


@wire.message("paxos.accepted")
@attrs.frozen
class Accepted:
    """Phase 2b: the acceptor's answer to an Accept (or the leader's note to itself that its log is durable)."""

    ballot: int  # the ballot answered
    ok: bool
    match: int = 0  # ok: every slot up to here holds the leader's value
    need: int = 0  # refused for a gap: send again from this slot
    promised: int = 0  # refused for a higher ballot: that ballot


@wire.message("paxos.heartbeat")
@attrs.frozen
class Heartbeat:
    """Leadership, the commit index, and the read-barrier round the reply confirms."""

    ballot: int
    commit: int  # never above what the receiver is known to hold of the leader's values
    beat: int


@wire.message("paxos.heartbeat_reply")
@attrs.frozen
class HeartbeatReply:
    ballot: int
    beat: int
    ok: bool  # False: the acceptor promised `promised`, a higher ballot
    promised: int = 0
    # ok: every slot up to here holds the leader's value; lower than the leader believes after the
    # acceptor restarted (it knows only its snapshot for sure), so the leader sends again from here.
    match: int = 0


@wire.message("paxos.snapshot")
@attrs.frozen
class InstallSnapshot:
    """One chunk of the leader's snapshot; `done` marks the last."""

    ballot: int
    meta: SnapshotMeta
    offset: int  # byte offset of `data` in the snapshot
    data: bytes
    done: bool


@wire.message("paxos.snapshot_reply")
@attrs.frozen
class SnapshotReply:
    ballot: int
    index: int  # the snapshot's index the reply is about
    offset: int  # bytes the receiver holds; the next chunk starts there
    done: bool  # installed (or everything it covers was already applied)


@wire.message("paxos.takeover")
@attrs.frozen
class Takeover:
    """The leader hands over: run phase 1 now."""

    ballot: int  # the leader's ballot; the new one must be higher


@wire.message("paxos.stable")
@attrs.frozen
class Stable:
    """The node's stable state: the highest ballot it promised, and how far it knows slots are chosen."""

    promised: int
    commit: int = 0  # every slot up to here is chosen, and the log (or snapshot) holds its value


@wire.message("paxos.config")
@attrs.frozen
class Configuration:
    """A membership: voters decide, learners only learn; every member has a ballot number."""

    voters: tuple[str, ...]
    learners: tuple[str, ...] = ()
    numbers: tuple[int, ...] = ()  # member numbers, in the order of `members`
    next_number: int = 1  # the number the next added member gets

    @classmethod
    def bootstrap(cls, voters: tuple[str, ...]) -> Configuration:
        """The first configuration: `voters` numbered 1.. in sorted order."""
        ordered = tuple(sorted(voters))
        return cls(voters=ordered, numbers=tuple(range(1, len(ordered) + 1)), next_number=len(ordered) + 1)

    @property
    def members(self) -> tuple[str, ...]:
        """Voters and learners, sorted."""
        return tuple(sorted(self.voters + self.learners))

    def number(self, node: str) -> int | None:
        """`node`'s member number, or None when it is no member."""
        members = self.members
        return self.numbers[members.index(node)] if node in members else None

    def changed(self, voters: tuple[str, ...], learners: tuple[str, ...]) -> Configuration:
        """The configuration with these members: members kept keep their numbers, new ones get the next."""
        voters, learners = tuple(sorted(voters)), tuple(sorted(learners))
        numbering = dict(zip(self.members, self.numbers))
        following = self.next_number
        for node in sorted(voters + learners):
            if node not in numbering:
                numbering[node] = following
                following += 1
        members = tuple(sorted(voters + learners))
        return Configuration(voters=voters, learners=learners, numbers=tuple(numbering[n] for n in members),
                             next_number=following)

    def well_formed(self) -> bool:
        """Members disjoint and numbered once each, below `SPAN`, under `next_number`: what a peer must send."""
        members = self.voters + self.learners
        numbers = set(self.numbers)
        return (len(set(members)) == len(members) == len(self.numbers) == len(numbers)
                and all(0 < n < min(self.next_number, SPAN) for n in numbers) and self.next_number <= SPAN)

    def encode(self) -> bytes:
        return wire.encode(self)

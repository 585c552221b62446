"""Phase 1 and the roles: who runs for leader, when, and how a new leader recovers the open slots.

Theory of operation.
- A voter that hears from no leader for a failure-detection timeout runs
  phase 1: it picks a ballot above every one it has heard of (its round + 1,
  its member number), promises it itself (durably, before any Prepare
  leaves) and asks every voter to promise it for every slot after its
  commit index. A timeout's range widens with each failed attempt (randomized
  back-off), so two candidates do not duel forever.
- With promises from a quorum of voters it leads (a quorum of every
  configuration it learns from the promises, in turn: see `_configs`). For every slot from that
  first one to the highest any promise reports, it proposes the value a
  promise reports as chosen, else the value accepted under the highest
  ballot, else a no-op (a hole). After them it writes one no-op of its own;
  reads and membership changes wait until that slot is chosen. Recovered
  values are proposed again under the new ballot, which is what makes them
  chosen ("Paxos Made Simple" §2.2: a proposer must propose the value of the
  highest-numbered proposal among a majority's answers).
- A refusal naming a higher ballot, a quorum of refusals, or the timeout
  ends the attempt; the node waits out a back-off and tries again.
- With `sticky` on, phase 1 starts with a probe: the would-be candidate
  asks whether voters would promise its ballot (they would not while they
  hear a live leader) and raises nothing until a quorum says yes. A node
  that merely missed a few heartbeats, or was cut off and returns, so never
  raises promises above the leader's ballot and never deposes it (the
  Paxos counterpart of Raft's PreVote). A hand-over skips the probe.

This module owns `role`, `leader`, `candidacy`, `failures`, `highest_seen`
and `deadline`.
"""

from __future__ import annotations

from keel import wire
from keel.consensus import Entry, EntryKind, LeaderChanged, RoleChanged, quorum

from keel_consensus_paxos.ballot import ballot, round_of
from keel_consensus_paxos.messages import Configuration, Prepare, Promise
from keel_consensus_paxos.state import Candidacy, PaxosState, Peer, Role

__all__ = ["PROMISE_BYTES", "become_follower", "campaign", "on_promise", "on_tick", "own_promise", "promise_or_refuse",
           "sync_peers"]


# bytes of entries a Promise carries at most: well under the default max_frame (16 MiB), and room
# for a few leaders' unchosen slots (`replication.UNCHOSEN_BYTES` each). A candidate further behind
# is refused as `behind`, and a more up-to-date one wins instead.
PROMISE_BYTES = 12 * 2**20


def on_tick(s: PaxosState) -> None:
    """A voter that heard from no leader in time runs for leader; a candidate out of time gives up."""
    if s.now < s.deadline:
        return
    if s.role is Role.CANDIDATE:
        s.failures += 1
        become_follower(s, None)
    elif s.role is Role.FOLLOWER:
        campaign(s)


def campaign(s: PaxosState, *, takeover: bool = False, probe: bool | None = None) -> None:
    """Run phase 1 (after a probe, unless handing over or stickiness is off) under a ballot above every one heard of."""
    number = s.members.config.number(s.node_id)
    if number is None or not s.members.is_voter(s.node_id):
        return
    mine = ballot(round_of(max(s.promised, s.highest_seen)) + 1, number)
    first = s.commit + 1
    probing = s.options.sticky and not takeover if probe is None else probe
    if not probing:
        s.promised = s.highest_seen = mine
        s.out.save_stable(mine)
    peers = s.voting_peers()
    s.candidacy = Candidacy(ballot=mine, first=first, probing=probing, takeover=takeover, asked={s.node_id, *peers},
                            promises={s.node_id: own_promise(s, mine, first)})
    _set_role(s, Role.CANDIDATE, None)
    s.reset_deadline()
    for voter in peers:
        s.send(voter, Prepare(ballot=mine, first=first, takeover=takeover, probe=probing))
    _count(s)


def own_promise(s: PaxosState, mine: int, first: int) -> Promise:
    """What this node's own acceptor answers its own Prepare."""
    return Promise(ballot=mine, ok=True, entries=s.log.between(first, s.log.last_index), commit=s.commit)


def promise_or_refuse(s: PaxosState, src: str, m: Prepare) -> Promise:
    """An acceptor's answer to a Prepare (phase 1b); the caller persists a raised promise first."""
    if m.ballot < s.promised:
        return Promise(ballot=m.ballot, ok=False, promised=s.promised, probe=m.probe)
    if m.ballot > s.promised and s.options.sticky and not m.takeover and _sticky(s, src):
        return Promise(ballot=m.ballot, ok=False, probe=m.probe)
    if m.probe:
        return Promise(ballot=m.ballot, ok=True, probe=True)
    if m.first < s.log.first_index or s.log.bytes_between(m.first, s.log.last_index) > PROMISE_BYTES:
        return Promise(ballot=m.ballot, ok=False, behind=True)
    if m.ballot > s.promised:
        s.promised = m.ballot
        s.highest_seen = max(s.highest_seen, m.ballot)
        s.out.save_stable(m.ballot)
        if s.role in (Role.LEADER, Role.CANDIDATE) or s.leader not in (None, src):
            become_follower(s, None)
    return Promise(ballot=m.ballot, ok=True, entries=s.log.between(m.first, s.log.last_index), commit=s.commit)


def _sticky(s: PaxosState, src: str) -> bool:
    """Whether this node still hears a live leader other than `src` (a leader hears itself)."""
    if s.role is Role.LEADER:
        return True
    return s.leader is not None and s.leader != src and s.now - s.heard_at < s.settings.election_min


def on_promise(s: PaxosState, src: str, m: Promise) -> None:
    c = s.candidacy
    if s.role is not Role.CANDIDATE or c is None or m.ballot != c.ballot or m.probe != c.probing \
            or src not in c.asked:
        return
    if not m.ok:
        s.highest_seen = max(s.highest_seen, m.promised)
        c.refused.add(src)
        if m.promised > c.ballot or m.behind or len(s.voters()) - len(c.refused) < quorum(len(s.voters())):
            s.failures += 1
            become_follower(s, None)
        return
    if not _plausible(c.first, m.entries) or not s.members.readable(m.entries):
        return  # not slots a Promise can hold, or a configuration that does not decode: a broken peer
    c.promises[src] = m
    _count(s)


def _plausible(first: int, entries: tuple[Entry, ...]) -> bool:
    """Slots ascending from `first`, with no more holes than entries (keel's acceptors send none; a
    classic one a few), so a peer cannot make recovery fill an unbounded run of no-ops."""
    indexes = [e.index for e in entries]
    return all(a < b for a, b in zip(indexes, indexes[1:])) and (not indexes or (
        indexes[0] >= first and indexes[-1] - first + 1 <= 2 * len(indexes)))


def _count(s: PaxosState) -> None:
    c = s.candidacy
    assert c is not None
    if c.probing:
        voters = s.voters()
        if sum(1 for v in voters if v in c.promises) >= quorum(len(voters)):
            s.candidacy = None
            campaign(s, probe=False)  # a quorum would promise: now for real
        return
    run = _recovered(c)
    configs = _configs(s, c, run)
    for config in configs:
        for voter in config.voters:
            if voter not in c.asked:  # a member of a configuration learnt from the promises
                c.asked.add(voter)
                s.send(voter, Prepare(ballot=c.ballot, first=c.first, takeover=c.takeover))
    if s.node_id not in configs[-1].voters:
        s.failures += 1
        become_follower(s, None)  # the recovered log removes this node: it cannot lead
        return
    if all(sum(1 for v in config.voters if v in c.promises) >= quorum(len(config.voters)) for config in configs):
        _become_leader(s, c, run)


def _recovered(c: Candidacy) -> list[Entry]:
    """What a leader must propose from `c.first` on, by the promises so far.

    Per slot: the value a promise reports as chosen, else the one accepted
    under the highest ballot, else a no-op; all under the candidate's ballot.
    """
    chosen: dict[int, Entry] = {}
    best: dict[int, Entry] = {}
    for promise in c.promises.values():
        for entry in promise.entries:
            if entry.index < c.first:
                continue
            if entry.index <= promise.commit:
                chosen[entry.index] = entry
            elif entry.index not in best or entry.term > best[entry.index].term:
                best[entry.index] = entry
    top = max(list(chosen) + list(best), default=c.first - 1)
    run = []
    for slot in range(c.first, top + 1):
        found = chosen.get(slot) or best.get(slot)
        if found is None:
            run.append(Entry(index=slot, term=c.ballot, kind=EntryKind.NOOP))
        else:
            run.append(Entry(index=slot, term=c.ballot, kind=found.kind, data=found.data))
    return run


def _configs(s: PaxosState, c: Candidacy, run: list[Entry]) -> list[Configuration]:
    """Every configuration the slots from `c.first` on may have been chosen under, in order.

    The one in force at the last slot known chosen, then each CONFIG entry
    the promises report. Changes go one node at a time and each starts only
    once the one before is chosen, so a majority of one configuration
    meets whichever quorum chose the next: a candidate that gathers a
    majority of each in turn learns every value any of them chose. Without
    this, a candidate that missed two changes could lead on the promises of
    nodes no longer voting.
    """
    configs = [s.members.config_at(c.first - 1)]
    configs += [wire.decode_as(e.data, Configuration, f"config in slot {e.index}") for e in run
                if e.kind is EntryKind.CONFIG]
    return configs


def _become_leader(s: PaxosState, c: Candidacy, run: list[Entry]) -> None:
    """Propose again every slot a quorum may have accepted, fill the holes, and lead."""
    top = run[-1].index if run else c.first - 1
    run = run + [Entry(index=top + 1, term=c.ballot, kind=EntryKind.NOOP)]
    s.log.accept_run(tuple(run))
    s.members.rewritten(c.first, tuple(run))
    s.candidacy = None
    s.failures = 0
    s.leader_ballot = c.ballot
    s.synced = s.log.last_index
    s.ready_slot = top + 1
    s.own_match = s.own_noted = s.commit
    s.uncommitted_bytes = sum(len(e.data) for e in run)
    s.led_since = s.now
    s.peers = {}
    s.reads = []
    s.transfer = None
    s.next_heartbeat = s.now
    sync_peers(s)
    _set_role(s, Role.LEADER, s.node_id)


def sync_peers(s: PaxosState) -> None:
    """A leader replicates to the members in force, and to those a change not yet chosen removes.

    A removed node must hold the CONFIG entry that removes it, or it would
    go on believing it votes and run for leader.
    """
    members = set(s.members.config.members)
    if s.members.latest_index > s.commit:
        members |= set(s.members.config_at(s.members.latest_index - 1).members)
    members.discard(s.node_id)
    for node in sorted(members):
        if node not in s.peers:
            # From the first slot not known chosen: at a takeover, where the proposals of this ballot begin.
            s.peers[node] = Peer(next=s.commit + 1, answered_at=s.now, heard_at=s.now)
    for node in sorted(s.peers):
        if node not in members:
            del s.peers[node]


def become_follower(s: PaxosState, leader: str | None) -> None:
    """Stop leading or campaigning; follow `leader` (None: wait for one, campaigning after a timeout)."""
    s.candidacy = None
    if s.role is Role.LEADER:
        s.peers = {}
        s.reads = []
        s.transfer = None
    role = Role.FOLLOWER if s.members.is_voter(s.node_id) else Role.LEARNER
    _set_role(s, role, leader)
    s.reset_deadline()


def _set_role(s: PaxosState, role: Role, leader: str | None) -> None:
    if role is not s.role or role.value != s.reported_role:
        s.role = role
        s.reported_role = role.value
        s.out.event(RoleChanged(role.value, s.leader_ballot if role is Role.LEADER else s.promised))
    if leader != s.leader:
        s.leader = leader
        s.out.event(LeaderChanged(leader, s.leader_ballot if leader is not None else s.promised))

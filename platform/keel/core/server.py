"""CoreServer: one core node's service logic, sans-I/O, for the Trio runtime and the simulator alike.

Theory of operation. The server wraps an `EngineNode` (the consensus engine,
the `CoreMachine` and its snapshots) and turns client requests into engine
calls and engine events into answers. A request arrives with a reference
the driver chose (`request(ref, call)`); its answer leaves in a later
`poll()` as `(ref, reply)`. Nothing here waits: a request that cannot be
answered yet is remembered with what would answer it.

- A mutating request (`api.MUTATIONS`) is proposed as a `Command` stamped
  with the client's session and the leader's clock. It is answered when its
  index is applied: with the machine's answer if the entry there is ours,
  else `Unavailable` (a leader change replaced it; the client retries with
  the same seq, which the session table makes safe). A leader that steps
  down answers its pending proposals with `Unavailable` at once, for the
  same reason: they may commit or vanish, and a retry is safe either way.
  (`NotLeader` always means the request was not taken.)
- A linearizable read (`Range`, `Leader`) and a lease keep-alive wait for a
  read barrier; a serializable `Range` is answered from the local machine.
  A keep-alive needs the barrier too: a deposed leader must not restart a
  lease's clock, or the lease could end before the client expects.
- A `Watch` is answered from the local machine's history, at once if there
  are events from its start revision, else when some arrive or its wait
  runs out. Any node serves watches; the history is the same everywhere.
- A `Lock` or `Campaign` that did not get the lock waits, up to its
  `wait`, for its key to come first in the queue.
- A membership change goes to the engine, which logs it itself; the answer
  is the configuration the leader holds right after.
- A node that does not lead answers what needs a leader with `NotLeader`.

The leader also runs the data cluster's controller (`keel.data.controller`):
on every tick it feeds it the data members and the committed partition map
as this node's machine holds them (when they changed), and proposes the map
the controller decides on as its own `CommitMap` command, a compare-and-set
on the map key, so a deposed leader's late proposal changes nothing.
`DataReady` reports from data nodes go to it. A new leader starts a new
controller, which waits for membership to settle before it places anything.

The leader keeps the lease clocks (`keel.core.leases.LeaseClock`): restarted
for every lease when it takes office, refreshed by grants and keep-alives,
and expired leases are proposed as `LeaseExpire` commands from `tick`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import attrs

from keel import wire
from keel.consensus import (
    Applied, EngineFactory, EngineNode, EngineSettings, Installed, ReadAbandoned, ReadServed, Recovered,
    RoleChanged, StoredSnapshot, fold_durable,
)
from keel.core.api import (
    MUTATIONS, Call, Campaign, CampaignReply, ChangeMembership, CoreStatus, CoreStatusReply, Leader, LeaseGrantReply,
    LeaseKeepAlive, LeaseKeepAliveReply, LeaseRevoke, LeaseRevokeReply, Lock, LockReply, MembershipReply, Range, Watch, WatchReply,
)
from keel.consensus import MembershipChange
from keel.core.leases import LeaseClock
from keel.core.api.system import MAP_KEY, MEMBER_PREFIX, DataReady, DataReadyReply
from keel.core.machine import REPLY_BYTES, Command, CoreMachine, LeaseExpire
from keel.data.controller import Controller, ControllerConfig, ReadyReport, members_from_kvs
from keel.data.partition_map import MapError, PartitionMap
from keel.errors import Compacted, KeelError, LeaseExpired, NotLeader, Unavailable
from keel.transport.envelope import error_reply

__all__ = ["MAX_WAIT_S", "CoreServer", "ServerOutput"]

MAX_WAIT_S = 30.0  # seconds a watch, lock or campaign may be held; clients poll again after it
EXPIRY_RETRY_S = 1.0  # seconds after which a proposed lease expiry that did not apply is proposed again
MAP_RETRY_S = 2.0  # seconds after which a proposed map that changed nothing may be proposed again
CONTROLLER = ControllerConfig(map_key=MAP_KEY, member_prefix=MEMBER_PREFIX)  # 64 partitions, 3 replicas


@attrs.frozen
class ServerOutput:
    """What the driver must do after a poll, in this order."""

    persist: tuple[Any, ...] = ()  # log operations and StoredSnapshots, in order; durable before `send` leaves
    send_early: tuple[tuple[str, Any], ...] = ()  # (peer, message); waits only for earlier polls' persist
    send: tuple[tuple[str, Any], ...] = ()  # (peer, message)
    replies: tuple[tuple[Any, Any], ...] = ()  # (ref, reply message or ErrorReply); may go at once
    events: tuple[Any, ...] = ()  # for observation hooks and checkers


@attrs.define
class _Waiter:
    ref: Any
    op: Any
    deadline: float
    start: int = 0  # watches: the revision to read from


class CoreServer:
    """The core service of one node; see the module doc."""

    def __init__(self, node_id: str, *, create: EngineFactory, settings: EngineSettings, rng: random.Random,
                 recovered: Recovered | None = None, snapshot: StoredSnapshot | None = None,
                 snapshot_every: int = 10_000, consensus: str = "", defer_snapshots: bool = False,
                 clock_slack: float = 0.0, machine: Callable[[], CoreMachine] = CoreMachine,
                 controller: ControllerConfig | None = CONTROLLER) -> None:
        self.node = EngineNode(node_id, create=create, settings=settings, rng=rng, recovered=recovered,
                               snapshot=snapshot, snapshot_every=snapshot_every, machine=machine,
                               defer_snapshots=defer_snapshots)
        self.node_id = node_id
        self.consensus = consensus
        self.now = 0.0
        # Seconds `now` may lag the true time when an input arrives (a driver
        # that reads its clock only at ticks); lease clocks start this much
        # later, so a lease never ends before its holder's TTL.
        self.clock_slack = clock_slack
        self.max_command = settings.max_batch_bytes  # bytes of one encoded command the engine takes
        self.leading = False
        self.controller_config = controller  # None: this core places no data partitions
        self.controller: Controller | None = None  # while leading
        self._fed_revision = -1  # the keyspace revision the controller last saw
        self._fed_map = -1  # the map key's mod revision it last saw
        self._map_proposed_at = 0.0
        self._log_base = (0.0, 0.0)  # (log time, own clock) when this node took office
        self.clock = LeaseClock()
        # index -> (refs waiting on it, command bytes, its (client, seq)), and the way back
        self._proposed: dict[int, tuple[list[Any], bytes, tuple[str, int]]] = {}
        self._proposing: dict[tuple[str, int], int] = {}  # (client, seq) -> index of this leader's pending copy
        self._reads: dict[int, tuple[Any, Any]] = {}  # read request id -> (ref, op)
        self._next_read = 0
        self._watches: list[_Waiter] = []
        self._queued: list[_Waiter] = []  # locks and campaigns waiting to come first
        self._replies: list[tuple[Any, Any]] = []

    @classmethod
    def from_durable(cls, node_id: str, durable: tuple[Any, ...], rng: random.Random, **kwargs: Any) -> CoreServer:
        """A server rebuilt from a simulated disk (a `keel.sim` node factory)."""
        recovered, snapshot = fold_durable(durable)
        return cls(node_id, rng=rng, recovered=recovered, snapshot=snapshot, **kwargs)

    def log_time(self) -> float:
        """The time to stamp on a command: log time goes on from where the last leader left it.

        Each node's clock starts anywhere (Trio's even at a random offset), so
        a new leader continues the log's time from the latest it applied at
        its election, by its own clock's progress since; sessions expire by
        this time, never by a jump between two nodes' clocks.
        """
        base, since = self._log_base
        return base + max(0.0, self.now - since)

    @property
    def machine(self) -> CoreMachine:
        return self.node.machine  # type: ignore[return-value]

    # --- inputs ----------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """The driver's clock read `now` (before an input): what leases and waits are timed by."""
        self.now = max(self.now, now)

    def tick(self, now: float) -> None:
        self.now = max(self.now, now)
        self.node.tick(now)
        if self.leading:
            for lease_id in self.clock.expired(self.now, EXPIRY_RETRY_S):
                lease = self.machine.leases.leases.get(lease_id)
                if lease is None:
                    self.clock.forget(lease_id)
                    continue
                expiry = LeaseExpire(lease_id, lease.granted)
                try:
                    self.node.propose(wire.encode(Command("", 0, 0, self.log_time(), expiry)))
                except KeelError:
                    break  # lost leadership meanwhile; the next leader restarts the clocks
            if self.controller is not None:
                self._control()
        self._expire_waiters()

    def receive(self, src: str, message: Any) -> None:
        """A peer's message for the engine."""
        self.node.receive(src, message)

    def request(self, ref: Any, call: Any) -> None:
        """A client's request; its answer comes out of a later `poll` with `ref`."""
        try:
            self._serve(ref, call)
        except KeelError as exc:
            self._replies.append((ref, error_reply(exc)))

    def poll(self) -> ServerOutput:
        out = self.node.poll()
        for event in out.events:
            self._observe(event)
        self._wake_waiters()
        replies, self._replies = self._replies, []
        return ServerOutput(persist=out.persist, send_early=out.send_early, send=out.send, replies=tuple(replies),
                            events=out.events)

    def status(self) -> CoreStatusReply:
        s = self.node.engine.status()
        return CoreStatusReply(node_id=self.node_id, consensus=self.consensus, role=s.role, leader=s.leader,
                               term=s.term, commit_index=s.commit_index, applied_index=self.machine.index,
                               last_index=s.last_index, revision=self.machine.store.revision, voters=s.voters,
                               learners=s.learners)

    # --- serving -------------------------------------------------------------------------------

    def _serve(self, ref: Any, call: Any) -> None:
        if isinstance(call, CoreStatus):
            self._replies.append((ref, self.status()))
            return
        if not isinstance(call, Call):
            raise KeelError(f"{type(call).__name__} is not a core request")
        op = call.op
        if isinstance(op, MUTATIONS):
            if not call.client or call.seq < 1:
                raise KeelError(f"{type(op).__name__} changes the keyspace: it needs a client id and a seq above 0")
            if isinstance(op, (Lock, Campaign)) and not 0 <= op.wait <= MAX_WAIT_S:
                raise KeelError(f"wait {op.wait:g} s is outside 0…{MAX_WAIT_S:g} s")
            self._notice_election()
            index = self._proposing.get((call.client, call.seq))
            if index is not None:
                # A retry of a request this leader has proposed and not yet applied: it waits on
                # that entry rather than adding another copy (under load, copies of retries
                # would crowd out new work, and each copy would make the next retry likelier).
                self._proposed[index][0].append(ref)
                return
            data = wire.encode(Command.of(call, self.log_time()))
            if len(data) > self.max_command:
                raise KeelError(f"{type(op).__name__.lower()}: request of {len(data)} bytes exceeds the limit of "
                                f"{self.max_command} bytes (the engine's max_batch_bytes)")
            index = self.node.propose(data)
            self._proposed[index] = ([ref], data, (call.client, call.seq))
            self._proposing[(call.client, call.seq)] = index
        elif isinstance(op, Range) and op.serializable:
            self._replies.append((ref, self.machine.read(op)))
        elif isinstance(op, (Range, Leader, LeaseKeepAlive)):
            self._next_read += 1
            self.node.read(self._next_read)
            self._reads[self._next_read] = (ref, op)
        elif isinstance(op, Watch):
            self._watch(ref, op)
        elif isinstance(op, DataReady):
            self._notice_election()
            if self.controller is None:
                raise NotLeader(self.node.engine.status().leader)
            counted = self.controller.ready(ReadyReport(op.partition, op.node, op.epoch))
            self._replies.append((ref, DataReadyReply(counted)))
        elif isinstance(op, ChangeMembership):
            if not _NODE_ID.fullmatch(op.node):
                raise KeelError(f"membership change: {op.node!r} is not a node id (1-64 letters, digits, '-', '_', '.')")
            self.node.engine.change_membership(MembershipChange(op.action, op.node))
            status = self.node.engine.status()
            self._replies.append((ref, MembershipReply(status.voters, status.learners)))
        else:
            raise KeelError(f"{type(op).__name__} is not a core request")

    def _watch(self, ref: Any, op: Watch) -> None:
        if not 0 <= op.wait <= MAX_WAIT_S:
            raise KeelError(f"watch: wait {op.wait:g} s is outside 0…{MAX_WAIT_S:g} s")
        start = op.start_revision or self.machine.store.revision + 1
        waiter = _Waiter(ref, op, self.now + op.wait, start)
        if not self._answer_watch(waiter, final=op.wait == 0):
            self._watches.append(waiter)

    def _answer_watch(self, waiter: _Waiter, *, final: bool) -> bool:
        op = waiter.op
        try:
            events = self.machine.events(op.key, prefix=op.prefix, start=waiter.start, limit_bytes=REPLY_BYTES)
        except Compacted as exc:
            self._replies.append((waiter.ref, error_reply(exc)))
            return True
        if not events and not final:
            return False
        revision = self.machine.store.revision
        after = events[-1].kv.mod_revision + 1 if events else max(waiter.start, revision + 1)
        self._replies.append((waiter.ref, WatchReply(tuple(events), after, revision)))
        return True

    # --- engine events ----------------------------------------------------------------------------

    def _observe(self, event: Any) -> None:
        if isinstance(event, Applied):
            self._applied(event)
        elif isinstance(event, ReadServed):
            asked = self._reads.pop(event.request, None)
            if asked is not None:
                self._served(*asked)
        elif isinstance(event, ReadAbandoned):
            asked = self._reads.pop(event.request, None)
            if asked is not None:
                self._replies.append((asked[0], error_reply(NotLeader(self.node.engine.status().leader))))
        elif isinstance(event, RoleChanged):
            if event.role == "leader":
                if not self.leading:
                    self._take_office()
            else:
                self.clock.stop()
                self._redirect_proposals()
                self.leading = False
                self.controller = None
        elif isinstance(event, Installed):
            if self.leading:
                self.clock.restart(self.machine.leases, self.now)

    def _notice_election(self) -> None:
        # Elected by a message that no poll has reported yet: take office now, or this
        # command would be stamped with the node's own clock instead of the log's time
        # (a clock that starts anywhere, so every session could expire at once).
        if not self.leading and self.node.engine.status().role == "leader":
            self._take_office()

    def _take_office(self) -> None:
        """This node leads now: restart every lease's clock and go on with the log's time."""
        self.clock.restart(self.machine.leases, self.now)
        self._log_base = (self.machine.sessions.log_time, self.now)
        self.leading = True
        if self.controller_config is not None:
            self.controller = Controller(self.controller_config)
            self._fed_revision = self._fed_map = -1

    def _control(self) -> None:
        """Feed the controller what the machine holds, and propose the map it decides on."""
        controller = self.controller
        assert controller is not None
        store = self.machine.store
        if store.revision != self._fed_revision:
            self._fed_revision = store.revision
            kvs, _ = store.range(MEMBER_PREFIX, prefix=True, limit=0)
            controller.members(members_from_kvs(MEMBER_PREFIX, kvs), self.now)
            held = store.get(MAP_KEY)
            revision = held.mod_revision if held is not None else 0
            if revision != self._fed_map:  # decoded only when it changed, not on every write
                try:
                    current = PartitionMap.from_bytes(held.value) if held is not None else None
                except MapError:  # the machine stores only checked maps; one of a newer format, say
                    return
                controller.committed(current, revision)
                self._fed_map = revision
        controller.tick(self.now)
        pending = controller.pending
        if pending is not None and self.now - self._map_proposed_at > MAP_RETRY_S:
            controller.unanswered(pending)  # it changed nothing in time (lost with a leader, or not yet applied)
        proposal = controller.poll().proposal
        if proposal is not None:
            try:
                self.node.propose(wire.encode(Command("", 0, 0, self.log_time(), proposal.request)))
            except KeelError:
                return  # lost leadership meanwhile
            self._map_proposed_at = self.now

    def _applied(self, event: Applied) -> None:
        result = event.result
        if self.leading:
            self._track_leases(event, result)
        mine = self._proposed.pop(event.index, None)
        if mine is None:
            return
        refs, data, request = mine
        self._proposing.pop(request, None)
        if event.command != data:
            for ref in refs:
                self._replies.append((ref, error_reply(Unavailable(
                    f"index {event.index} went to another leader's entry; retry (the session makes it safe)"))))
            return
        for ref in refs:
            self._answer(ref, data, result)

    def _answer(self, ref: Any, data: bytes, result: Any) -> None:
        if isinstance(result, (LockReply, CampaignReply)):
            # An answer the session table replays was true when first given:
            # the lock may have passed on since, so answer as things stand now.
            result = self._queue_now(result)
            op = _op(data)
            if isinstance(result, (LockReply, CampaignReply)) and not _acquired(result) and op.wait > 0:
                self._queued.append(_Waiter(ref, (op, result), self.now + op.wait))
                return
        self._replies.append((ref, result))

    def _queue_now(self, reply: LockReply | CampaignReply) -> Any:
        """A lock's or campaign's answer as the keyspace stands now, or `LeaseExpired` if its key is gone."""
        kv = self.machine.store.get(reply.key)
        if kv is None:
            return error_reply(LeaseExpired(f"{reply.key!r} is gone: its lease expired or it was released"))
        token = {"token": kv.create_revision} if isinstance(reply, LockReply) else {"revision": kv.create_revision}
        return attrs.evolve(reply, **token, **{_ACQUIRED[type(reply)]: bool(self.machine.holds_first(reply.key))})

    def _redirect_proposals(self) -> None:
        # Our proposals may still commit, or be cut away with the rest of our
        # log beyond the new leader's, and then no index would ever answer
        # them. Send their clients on now: a retry carries the same session
        # seq, so it is applied once whichever way it went. Unavailable, not
        # NotLeader: NotLeader tells a client its request was not taken, and
        # these may still be applied.
        hint = self.node.engine.status().leader
        for refs, _, _ in self._proposed.values():
            for ref in refs:
                self._replies.append((ref, error_reply(Unavailable(
                    f"this node stopped leading before the request committed; it may still commit (leader hint: "
                    f"{hint or 'unknown'}); retry, the session makes it safe"))))
        self._proposed.clear()
        self._proposing.clear()

    def _track_leases(self, event: Applied, result: Any) -> None:
        if isinstance(result, LeaseGrantReply):
            lease = self.machine.leases.leases.get(result.id)
            if lease is not None:
                self.clock.refresh(lease, self.now + self.clock_slack)
        elif isinstance(result, LeaseRevokeReply):  # only then is the command worth decoding again
            op = _op(event.command)
            if isinstance(op, (LeaseRevoke, LeaseExpire)):
                self.clock.forget(op.id)

    def _served(self, ref: Any, op: Any) -> None:
        if isinstance(op, LeaseKeepAlive):
            lease = self.machine.leases.leases.get(op.id)
            if lease is None:
                self._replies.append((ref, error_reply(LeaseExpired(f"lease {op.id} does not exist "
                                                                    f"(expired or revoked)"))))
            elif not self.leading:
                self._replies.append((ref, error_reply(NotLeader(self.node.engine.status().leader))))
            elif self.clock.running_out(op.id, self.now):
                # Its expiry is due or already proposed: saying "alive" now would
                # promise a TTL that the expiry about to apply takes away.
                self._replies.append((ref, error_reply(LeaseExpired(f"lease {op.id} ran out before this "
                                                                    f"keep-alive reached the leader"))))
            else:
                self.clock.refresh(lease, self.now + self.clock_slack)
                self._replies.append((ref, LeaseKeepAliveReply(op.id, lease.ttl)))
            return
        try:
            self._replies.append((ref, self.machine.read(op)))
        except KeelError as exc:
            self._replies.append((ref, error_reply(exc)))

    # --- waiting requests ---------------------------------------------------------------------------

    def _wake_waiters(self) -> None:
        if self._watches:
            self._watches = [w for w in self._watches if not self._answer_watch(w, final=False)]
        if self._queued:
            still = []
            for waiter in self._queued:
                op, reply = waiter.op
                now = self._queue_now(reply)
                if isinstance(now, (LockReply, CampaignReply)) and not _acquired(now):
                    waiter.op = (op, now)
                    still.append(waiter)
                else:
                    self._replies.append((waiter.ref, now))
            self._queued = still

    def _expire_waiters(self) -> None:
        now = self.now
        for waiter in [w for w in self._watches if w.deadline <= now]:
            self._watches.remove(waiter)
            self._answer_watch(waiter, final=True)
        for waiter in [w for w in self._queued if w.deadline <= now]:
            self._queued.remove(waiter)
            self._replies.append((waiter.ref, waiter.op[1]))


_ACQUIRED = {LockReply: "acquired", CampaignReply: "elected"}
_NODE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _acquired(reply: LockReply | CampaignReply) -> bool:
    return bool(getattr(reply, _ACQUIRED[type(reply)]))


def _op(data: bytes) -> Any:
    command = wire.decode(data)
    return command.op if isinstance(command, Command) else None


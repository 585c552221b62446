"""The whole plugin contract, hook by hook.

A plugin is a module with `hookimpl`-decorated functions named after these
specs and a module attribute `KEEL_CONTRACT = "MAJOR.MINOR"` naming the
contract it was built for. It is published as a distribution with an entry
point in group `keel`; the host's built-ins load through the same path.

Hooks are synchronous and cheap: registration hooks return records
(`keel.contract`), observation hooks only look. Async work lives in the
objects that the registered factories build. The contract evolves by adding
hooks and parameters (an implementation may accept fewer), never by changing
what a parameter means; only a major version bump breaks.
"""

from __future__ import annotations

from collections.abc import Sequence

import pluggy

from keel import PROJECT
from keel.contract import ConsensusPlugin, NodeInfo, StorePlugin, TransportPlugin

hookspec = pluggy.HookspecMarker(PROJECT)

# --- loading: what a plugin provides ------------------------------------------


@hookspec
def keel_transports() -> Sequence[TransportPlugin]:
    """Register transport factories.

    Called once, when the plugin manager loads plugins, before any node starts.

    Returns:
        The transports this plugin provides, each under a name unique among
        all installed plugins of every kind (`tcp`, `memory`).

    Raises:
        Nothing on purpose; a plugin that cannot offer a transport returns ().
        The host raises `PluginError` when two plugins register one name.

    Since: contract 1.0
    """


@hookspec
def keel_consensus_engines() -> Sequence[ConsensusPlugin]:
    """Register consensus engine factories.

    Called once, when the plugin manager loads plugins, before any node starts.
    Each factory builds a sans-I/O engine: no sockets, files, clocks, threads
    or global randomness; time and randomness are handed in by the driver.

    Returns:
        The engines this plugin provides, each under a unique name (`raft`).

    Raises:
        Nothing on purpose; the host raises `PluginError` on a duplicate name.

    Since: contract 1.0
    """


@hookspec
def keel_stores() -> Sequence[StorePlugin]:
    """Register store factories for the data cluster.

    Called once, when the plugin manager loads plugins, before any node starts.
    A store owns the semantics of data (apply, merge, read, tombstones); its
    merge must be commutative, associative and idempotent.

    Returns:
        The stores this plugin provides, each under a unique name (`lww`).

    Raises:
        Nothing on purpose; the host raises `PluginError` on a duplicate name.

    Since: contract 1.0
    """


# --- node lifecycle ---------------------------------------------------------


@hookspec
def keel_node_started(node: NodeInfo) -> None:
    """Observe a node that has started serving.

    Called once per node process, after its transport listens and before it
    answers its first request.

    Args:
        node: the node's id, roles, addresses and data directory.

    Returns:
        Nothing; the return value is ignored.

    Raises:
        Nothing on purpose: an exception here is logged by the node and does
        not stop it.

    Since: contract 1.0
    """


@hookspec
def keel_node_stopping(node: NodeInfo) -> None:
    """Observe a node that is about to stop.

    Called once, when the node begins a graceful shutdown (SIGTERM, Ctrl-C),
    while its transport is still open. Not called when the process is killed.

    Args:
        node: the node's id, roles, addresses and data directory.

    Returns:
        Nothing; the return value is ignored.

    Raises:
        Nothing on purpose: an exception here is logged and shutdown goes on.

    Since: contract 1.0
    """


# --- observation ------------------------------------------------------------


@hookspec
def keel_role_changed(node: NodeInfo, role: str, term: int) -> None:
    """Observe this node's consensus role change.

    Called on the node whose role changed, after the engine reports it and
    before the node acts on it, so a plugin sees roles in the order taken.

    Args:
        node: the node that changed.
        role: the new role as its engine names it (`leader`, `follower`,
            `candidate`, `learner`…).
        term: the term or ballot round in which the role was taken.

    Returns:
        Nothing; the return value is ignored.

    Raises:
        Nothing on purpose: an exception here is logged and ignored.

    Since: contract 1.0
    """


@hookspec
def keel_leader_changed(node: NodeInfo, leader: str | None, term: int) -> None:
    """Observe a change of the leader this node knows of.

    Called on every core node when the leader it would redirect clients to
    changes, including to `None` (no leader known, an election is running).

    Args:
        node: the observing node.
        leader: the new leader's node id, or None.
        term: the term or ballot round of that leadership.

    Returns:
        Nothing; the return value is ignored.

    Raises:
        Nothing on purpose: an exception here is logged and ignored.

    Since: contract 1.0
    """


@hookspec
def keel_partition_map_changed(node: NodeInfo, epoch: int, replicas: Sequence[Sequence[str]]) -> None:
    """Observe a new partition map of the data cluster.

    Called on every node that follows the map, once per epoch, in epoch
    order, after the node has adopted the map.

    Args:
        node: the observing node.
        epoch: the map's epoch; it only grows.
        replicas: for each partition, in partition order, the node ids of
            its replica set, preferred coordinator first.

    Returns:
        Nothing; the return value is ignored.

    Raises:
        Nothing on purpose: an exception here is logged and ignored.

    Since: contract 1.0
    """

"""Fixtures for the TCP transport tests: real sockets on 127.0.0.1, port 0.

These tests run on the real clock: the kernel's sockets do not follow
Trio's mock clock. No test asserts on timing; every wait is bounded by a
deadline long enough for a loaded two-core machine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import pytest
import trio
import trustme

from keel.address import Address
from keel.conformance.transport import Probe
from keel.transport import BoundAddresses, Delivery, TlsSettings, TransportSettings

from keel_transport_tcp import TcpOptions, TcpTransport

DEADLINE_S = 30.0  # seconds any one wait in a test may take before it fails
POLL_S = 0.01  # seconds between looks at a condition being waited for
HOST = "127.0.0.1"
# Short delays so reconnect tests do not idle; the deadlines above stay long.
FAST = TcpOptions(backoff_initial=0.01, backoff_max=0.2, keepalive_interval=0.5, idle_timeout=10.0)


async def echo(request: Any) -> Any:
    return request


@attrs.define(eq=False)
class Node:
    """One served endpoint of a test cluster."""

    transport: TcpTransport
    bound: BoundAddresses
    scope: trio.CancelScope
    stopped: trio.Event

    @property
    def id(self) -> str:
        return self.transport.node_id

    def link(self, peer: str) -> Any:
        """The link's status row for `peer`, or None."""
        return next((row for row in self.transport.links() if row.peer == peer), None)

    def active(self, peer: str) -> Any:
        """The connection carrying the link to `peer` (white-box: for one-connection checks)."""
        link = self.transport._links.get(peer)
        return None if link is None else link.active


class Cluster:
    """Serves TCP endpoints in the test's nursery and waits on them."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self.nodes: dict[str, Node] = {}

    async def start(self, node_id: str, *, peer_port: int = 0, handler: Callable[[Any], Any] = echo,
                    **settings: Any) -> Node:
        """Serve a new endpoint `node_id` (no peers until `mesh` or `set_peers`)."""
        address = Address(HOST, peer_port)
        settings.setdefault("options", FAST)
        transport = TcpTransport(TransportSettings(
            node_id=node_id, listen_peer=address, listen_client=Address(HOST, 0), advertise_peer=address, **settings,
        ))
        scope, stopped = trio.CancelScope(), trio.Event()
        with trio.fail_after(DEADLINE_S):
            bound = await self._nursery.start(_serve_in, scope, stopped, transport, handler)
        node = self.nodes[node_id] = Node(transport, bound, scope, stopped)
        return node

    async def stop(self, node_id: str) -> Node:
        """Stop serving `node_id`; returns once its sockets are closed."""
        node = self.nodes.pop(node_id)
        node.scope.cancel()
        with trio.fail_after(DEADLINE_S):
            await node.stopped.wait()
        return node

    def mesh(self, *nodes: Node) -> None:
        """Make every one of `nodes` a peer of every other, all at once."""
        for node in nodes:
            node.transport.set_peers(tuple((o.id, o.bound.peer) for o in nodes if o is not node))

    async def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        try:
            with trio.fail_after(DEADLINE_S):
                while not condition():
                    await trio.sleep(POLL_S)
        except trio.TooSlowError:
            raise AssertionError(f"still waiting after {DEADLINE_S:g} s for {what}") from None

    async def receive(self, node: Node) -> Delivery:
        try:
            with trio.fail_after(DEADLINE_S):
                return await node.transport.receive()
        except trio.TooSlowError:
            raise AssertionError(f"{node.id} received nothing within {DEADLINE_S:g} s") from None

    async def exchange(self, src: Node, dst: Node, seq: int) -> None:
        """Send probes from `src` to `dst` until one arrives; skip any older ones."""
        async def keep_sending() -> None:
            while True:
                src.transport.send(dst.id, Probe(seq, "exchange"))
                await trio.sleep(0.05)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(keep_sending)
            while True:
                delivery = await self.receive(dst)
                if delivery.src == src.id and delivery.message == Probe(seq, "exchange"):
                    break
            nursery.cancel_scope.cancel()


async def _serve_in(scope: trio.CancelScope, stopped: trio.Event, transport: TcpTransport,
                    handler: Callable[[Any], Any], *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    try:
        with scope:
            await transport.serve(handler, task_status=task_status)
    finally:
        stopped.set()


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async with trio.open_nursery() as nursery:
        yield Cluster(nursery)
        nursery.cancel_scope.cancel()


@attrs.frozen
class Pki:
    """Files of a certificate from a throwaway authority, and of one from another."""

    tls: TlsSettings  # what the nodes and their clients use
    stranger: TlsSettings  # signed by an authority the nodes do not trust


def issue(authority: trustme.CA, folder: Any, name: str) -> TlsSettings:
    """Files for a certificate valid for 127.0.0.1, signed by `authority`."""
    cert = authority.issue_cert(HOST, "localhost")
    paths = {kind: folder / f"{name}-{kind}.pem" for kind in ("cert", "key", "ca")}
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(paths["cert"]), append=True)
    cert.private_key_pem.write_to_path(str(paths["key"]))
    authority.cert_pem.write_to_path(str(paths["ca"]))
    return TlsSettings(cert=str(paths["cert"]), key=str(paths["key"]), ca=str(paths["ca"]))


@pytest.fixture
def pki(tmp_path: Any) -> Pki:
    return Pki(tls=issue(trustme.CA(), tmp_path, "node"), stranger=issue(trustme.CA(), tmp_path, "stranger"))

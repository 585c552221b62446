"""Mutual TLS: only holders of a certificate from the configured authority get in."""

from __future__ import annotations

import attrs
import pytest
import trio

from keel.address import Address
from keel.conformance.transport import Probe
from keel.errors import ConfigError, Unavailable
from keel.transport import ClientSettings

from keel_transport_tcp import TcpOptions, connect
from keel_transport_tcp.tls import contexts

DEADLINE_S = 30.0
QUICK_HANDSHAKE = TcpOptions(handshake_timeout=0.5)  # where the test expects the handshake to fail


async def test_peers_and_clients_talk_over_tls(cluster, pki):
    a, b = await cluster.start("a", tls=pki.tls), await cluster.start("b", tls=pki.tls)
    cluster.mesh(a, b)
    await cluster.exchange(a, b, 0)
    await cluster.exchange(b, a, 1)
    with trio.fail_after(DEADLINE_S):
        async with await connect(b.bound.client, ClientSettings(tls=pki.tls)) as client:
            assert await client.request(Probe(2), timeout=DEADLINE_S) == Probe(2)


async def test_a_client_with_a_certificate_from_another_authority_is_refused(cluster, pki):
    node = await cluster.start("n", tls=pki.tls)
    stranger = attrs.evolve(pki.stranger, ca=pki.tls.ca)  # trusts the node, but is not trusted by it
    with trio.fail_after(DEADLINE_S), pytest.raises(Unavailable):
        async with await connect(node.bound.client, ClientSettings(tls=stranger)) as client:
            await client.request(Probe(1), timeout=DEADLINE_S)


async def test_a_client_that_does_not_trust_the_node_refuses_it(cluster, pki):
    node = await cluster.start("n", tls=pki.tls)
    with trio.fail_after(DEADLINE_S), pytest.raises(Unavailable, match="cannot connect"):
        await connect(node.bound.client, ClientSettings(tls=pki.stranger))


async def test_a_peer_with_a_certificate_from_another_authority_never_links(cluster, pki):
    a = await cluster.start("a", tls=pki.tls)
    b = await cluster.start("b", tls=pki.stranger)
    c = await cluster.start("c", tls=pki.tls)
    cluster.mesh(a, b, c)
    await cluster.exchange(a, c, 0)  # by now a has tried b too, with the same result every time
    assert not a.link("b").connected and not b.link("a").connected


async def test_a_plain_client_to_a_tls_node_is_unavailable(cluster, pki):
    node = await cluster.start("n", tls=pki.tls)
    with trio.fail_after(DEADLINE_S), pytest.raises(Unavailable):
        async with await connect(node.bound.client, ClientSettings(options=QUICK_HANDSHAKE)) as client:
            await client.request(Probe(1), timeout=DEADLINE_S)


async def test_a_tls_client_to_a_silent_listener_gives_up_after_the_handshake_timeout(pki):
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with listener:
        address = Address("127.0.0.1", listener.socket.getsockname()[1])
        with trio.fail_after(DEADLINE_S), pytest.raises(Unavailable, match="timed out"):
            await connect(address, ClientSettings(options=QUICK_HANDSHAKE, tls=pki.tls))


def test_unreadable_tls_files_are_a_config_error(pki, tmp_path):
    with pytest.raises(ConfigError, match=r"network\.tls\.cert"):
        contexts(attrs.evolve(pki.tls, cert=str(tmp_path / "missing.pem")))
    with pytest.raises(ConfigError, match=r"network\.tls\.ca"):
        contexts(attrs.evolve(pki.tls, ca=str(tmp_path / "missing.pem")))

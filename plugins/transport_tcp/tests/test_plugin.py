"""The distribution's entry point gives keel a working `tcp` transport."""

from __future__ import annotations

import keel.plugins
from keel.contract import Kind

from keel_transport_tcp import TcpOptions, TcpTransport, connect


def test_keel_loads_tcp_from_the_entry_point():
    plugins = keel.plugins.load()
    (installed,) = [item for item in plugins.installed if item.name == "tcp"]
    assert installed.kind is Kind.TRANSPORT
    assert installed.distribution == "keel-transport-tcp"
    assert installed.contract == "1.0"
    record = plugins.get(Kind.TRANSPORT, "tcp", field="transport.plugin")
    assert (record.create, record.connect, record.options) == (TcpTransport, connect, TcpOptions)

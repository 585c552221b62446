"""The TCP transport against the checks every transport must pass."""

from __future__ import annotations

import pytest

import functools
import logging

from keel.conformance import check_transport, serving_pair

from keel_transport_tcp.plugin import keel_transports


def tcp_plugin():
    (plugin,) = keel_transports()
    return plugin


@pytest.mark.conformance
async def test_tcp_transport_passes_the_transport_checks(caplog):
    await check_transport(functools.partial(serving_pair, tcp_plugin()))
    failures = [r for r in caplog.records if r.name == "keel.transport.tcp" and r.levelno == logging.ERROR]
    assert any(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in failures), (
        "a handler's non-keel exception must be logged on the node with its traceback"
    )


@pytest.mark.conformance
async def test_tls_transport_passes_the_transport_checks(pki):
    await check_transport(functools.partial(serving_pair, tcp_plugin(), tls=pki.tls))

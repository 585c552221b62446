"""The built-in memory transport against the shared transport checks."""

from __future__ import annotations

import functools

import attrs
import pytest
import trio

from keel.address import Address
from keel.conformance import check_transport, serving_pair
from keel.errors import Unavailable
from keel.transport.interface import TransportSettings
from keel.transport.memory import MemoryOptions, keel_transports


def memory_plugin():
    (plugin,) = keel_transports()
    return plugin


@pytest.mark.conformance
async def test_memory_transport_passes_the_transport_checks(autojump_clock):
    options = MemoryOptions(network="conformance")
    await check_transport(functools.partial(serving_pair, memory_plugin(), options=options))


async def test_memory_transport_refuses_an_address_in_use(autojump_clock):
    plugin = memory_plugin()
    address = Address("mem", 7)
    settings = TransportSettings(node_id="x", listen_peer=address, listen_client=None, advertise_peer=address,
                                 options=MemoryOptions(network="in-use"))

    async def handler(request):
        return request

    async with trio.open_nursery() as nursery:
        await nursery.start(plugin.create(settings).serve, handler)
        with pytest.raises(Unavailable, match="already in use"):
            await nursery.start(plugin.create(attrs.evolve(settings, node_id="y")).serve, handler)
        nursery.cancel_scope.cancel()
